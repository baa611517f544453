"""Windows of numeric text straight into float64 arrays, with no Python object per number.

Parsing text into Python floats and stacking them is what bounds JSON Lines and CSV files
(about 5 ms per 1,024 rows of 64 features, with ``orjson``). Here simdjson parses a whole
window as one JSON document and copies its numbers into one buffer (``as_buffer``), about
2.5x faster. That buffer is flat, so it says nothing about which line held which number:
one byte pass (``bytes.translate``) over its brackets and commas, and the parse's own
refusal of anything but numbers, prove that every line holds one value of the same shape
(see :func:`parse_json_rows`); the shape comes from the first line.

Every function returns ``None`` when it cannot vouch for the result, never a guess; the
caller then parses the window its slower way, which also names each bad line. Numbers are
correctly rounded by both parsers, so either way a value becomes the same float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import simdjson

_EVERY_BYTE = bytes(range(256))
_JSON_STRUCTURE = b"[],\n"
_NOT_JSON_STRUCTURE = bytes(b for b in _EVERY_BYTE if b not in _JSON_STRUCTURE)


def _flat(document: bytes) -> np.ndarray | None:
    """The numbers of a JSON document of (nested) arrays, in order, or ``None``."""
    try:
        # a parser per document: it costs less than the parse, and no thread shares one
        parsed: Any = simdjson.Parser().parse(document)
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
    text = b"\n".join(values)
    if text.translate(None, _NOT_JSON_STRUCTURE) != b"\n".join([first] * len(values)):
        return None
    flat = _flat(b"[" + b",".join(values) + b"]")
    if flat is None or flat.size != len(values) * math.prod(shape):
        return None
    return flat.reshape((len(values), *shape))


def parse_csv_matrix(text: bytes, rows: int, columns: int) -> np.ndarray | None:
    """``rows`` lines of ``columns`` numbers each (as JSON spells numbers) as a float64 matrix.

    Each line becomes a JSON array. The same ``columns - 1`` commas on every line, and no
    bracket anywhere, prove the matrix is not ragged; a quoted cell is a JSON string, which
    the parse refuses, as it refuses CSV's other spellings (``.5``, ``+1``, ``nan``, an
    empty cell): those windows are numpy's to parse.
    """
    if columns < 1:
        return None
    line = b"," * (columns - 1)
    if text.translate(None, _NOT_JSON_STRUCTURE) != b"\n".join([line] * rows):
        return None
    flat = _flat(b"[[" + text.replace(b"\n", b"],[") + b"]]")
    if flat is None or flat.size != rows * columns:
        return None
    return flat.reshape(rows, columns)
