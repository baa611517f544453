"""Windows of numeric text straight into float64 arrays, with no Python object per number.

Parsing text into Python floats and stacking them is what bounds JSON Lines and CSV files
(about 5 ms per 1,024 rows of 64 features, with ``orjson``). Here simdjson parses a whole
window as one JSON document and copies its numbers into one buffer (``as_buffer``), about
2.5x faster. That buffer is flat, so it says nothing about which line held which number.
Two proofs give the lines back, with the parse's own refusal of anything but numbers:

* the usual window (CSV, or JSON lines of ``[x, y, ...]``): a :data:`_BREAK` number
  between the lines must come back exactly every ``size + 1``-th number, and the brackets
  sit only where lines start and end (CSV: nowhere);
* any other shape: one byte pass (``bytes.translate``) over the brackets and commas must
  spell the first line's shape on every line (see :func:`parse_json_rows`).

Every function returns ``None`` when it cannot vouch for the result, never a guess; the
caller then parses the window its slower way, which also names each bad line. Numbers are
correctly rounded by both parsers, so either way a value becomes the same float64.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import simdjson

_EVERY_BYTE = bytes(range(256))
_JSON_STRUCTURE = b"[],\n"
_NOT_JSON_STRUCTURE = bytes(b for b in _EVERY_BYTE if b not in _JSON_STRUCTURE)
# A line break, as a number no file is likely to hold (one that does is parsed the slow
# way): finding where it lands among the numbers is cheaper than a byte pass over the text.
_BREAK = b"-3.14159e-300"
_BREAK_VALUE = float(_BREAK)
_BREAK_BETWEEN = b"," + _BREAK + b","
_BREAK_END = b"," + _BREAK + b"]"

# One parser per thread, kept: a new parser sizes its buffers for every document, which cost
# half as much again as the parse itself (60 ms of a 100k-row file). A parser refuses to parse
# while a document it returned is alive, so a document never leaves ``_flat``. Its buffers are
# several times the largest document it has read, so a rare huge window (long lines of many
# numbers) gets a parser of its own, freed with it, instead of growing the kept one for good.
_parsers = threading.local()
_KEPT_PARSER_MAX_BYTES = 8 * 1024 * 1024


def _parser() -> Any:
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    return parser


def _flat(document: bytes) -> np.ndarray | None:
    """The numbers of a JSON document of (nested) arrays, in order, or ``None``."""
    try:
        parser = _parser() if len(document) <= _KEPT_PARSER_MAX_BYTES else simdjson.Parser()
        parsed: Any = parser.parse(document)
        return np.frombuffer(parsed.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError):  # not JSON, out of range, not all numbers
        return None


def _shape(structure: bytes) -> tuple[int, ...] | None:
    """The shape of the one regular array that ``structure`` (its brackets and commas) spells.

    Read along the first elements, then checked by spelling that shape back, so the line is
    exactly one array and not ragged at any depth. (``[]`` reads as one element: an empty
    array then shows as a missing number in the caller's count.)
    """
    counts: list[int] = []  # elements of the first array at each depth
    open_first: list[bool] = []  # whether that first array is still open
    depth = 0
    for byte in structure:
        if byte == 0x5B:  # [
            depth += 1
            if depth > len(counts):
                counts.append(1)
                open_first.append(True)
        elif byte == 0x5D:  # ]
            if depth == 0:
                return None
            open_first[depth - 1] = False
            depth -= 1
        elif depth and open_first[depth - 1]:  # a comma between the first array's elements
            counts[depth - 1] += 1
    shape = tuple(counts)
    return shape if shape and _spelled(shape) == structure else None


def _spelled(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a regular array of ``shape``: (2, 3) is ``[[,,],[,,]]``."""
    inner = b""
    for count in reversed(shape):
        inner = b"[" + b",".join([inner] * count) + b"]"
    return inner


def parse_json_rows(values: Sequence[bytes]) -> np.ndarray | None:
    """Lines that each hold one JSON array of numbers, all of one shape, as one array.

    The flat buffer splits back into the lines because: the first line's brackets and
    commas spell one regular array; every line has exactly the same brackets and commas;
    the lines joined as ``[line,line,...]`` parse as arrays of numbers only (no string, so
    every bracket and comma counted above is JSON's; no number outside its brackets, none
    missing between commas); and the count of numbers is lines times the shape's size (so
    no array that looked like one element was empty).
    """
    if not values:
        return None
    first = values[0].translate(None, _NOT_JSON_STRUCTURE)
    shape = _shape(first)
    if shape is None:
        return None
    if len(shape) == 1:  # the usual line, ``[x, y, ...]``: proved without a byte pass
        vectors = _vectors(values, shape[0])
        if vectors is not None:
            return vectors
    text = b"\n".join(values)
    if text.translate(None, _NOT_JSON_STRUCTURE) != b"\n".join([first] * len(values)):
        return None
    flat = _flat(b"[" + b",".join(values) + b"]")
    if flat is None or flat.size != len(values) * math.prod(shape):
        return None
    return flat.reshape((len(values), *shape))


def _vectors(values: Sequence[bytes], size: int) -> np.ndarray | None:
    """Lines that are each exactly ``[`` ``size`` numbers ``]``, as a matrix, or ``None``.

    The lines are joined with a :data:`_BREAK` number between them. The only brackets in
    that text are found where each line starts and ends (so no line nests, pads or splits
    an array), and the breaks come back every ``size + 1``-th number and nowhere else (so
    every line holds ``size`` numbers). Anything else is for the byte-pass proof.
    """
    rows = len(values)
    doc = _joined(values)
    lengths = np.fromiter(map(len, values), np.int64, rows)
    starts = np.cumsum(lengths + len(_BREAK_BETWEEN)) - lengths - len(_BREAK_BETWEEN) + 1
    text = np.frombuffer(doc, np.uint8)
    # A bracket at each line's first and last byte (distinct places), and no more brackets
    # in the text than those and the document's own two: so none anywhere else.
    if not (
        bool((text[starts] == 0x5B).all())  # [
        and bool((text[starts + lengths - 1] == 0x5D).all())  # ]
        and np.count_nonzero(text == 0x5B) == rows + 1
        and np.count_nonzero(text == 0x5D) == rows + 1
    ):
        return None
    return _rows_between_breaks(_flat(doc), rows, size)


def _joined(lines: Sequence[bytes]) -> bytes:
    """``[line,BREAK,line,BREAK,...,line,BREAK]`` in one pass (no copy to add the brackets)."""
    pieces = list(lines)
    pieces[0] = b"[" + pieces[0]
    pieces[-1] = pieces[-1] + _BREAK_END
    return _BREAK_BETWEEN.join(pieces)


def _rows_between_breaks(flat: np.ndarray | None, rows: int, size: int) -> np.ndarray | None:
    """``flat`` as ``rows`` rows of ``size`` when a break ends every row and nothing else is
    one (the caller put exactly ``rows`` breaks in); otherwise ``None``."""
    width = size + 1
    if flat is None or flat.size != rows * width:
        return None
    is_break = flat == _BREAK_VALUE
    if not (is_break[size::width].all() and np.count_nonzero(is_break) == rows):
        return None
    return flat.reshape(rows, width)[:, :size]


def parse_csv_matrix(lines: Sequence[bytes], columns: int) -> np.ndarray | None:
    """Lines of ``columns`` numbers each (as JSON spells numbers) as a float64 matrix.

    The lines become one flat JSON array, joined by :data:`_BREAK` numbers in one pass. No
    bracket but the array's own means every cell is at most one number (the parse refuses a
    quoted cell, an empty one, and CSV's spellings JSON lacks: ``.5``, ``+1``, ``nan``); and
    when that number comes back exactly once per line, every ``columns + 1``-th, they are the
    breaks and nothing else, so no line is ragged. A cell that holds the break's value, or
    anything else, sends the window to numpy's parser.
    """
    if columns < 1 or not lines:
        return None
    document = _joined(lines)
    if document.find(b"[", 1) != -1 or document.find(b"]", 0, len(document) - 1) != -1:
        return None
    return _rows_between_breaks(_flat(document), len(lines), columns)
