"""Datasets from bytes: CSV with a header, ``.npz`` (X, y) and JSON Lines; or, to
fine-tune a text encoder, texts and labels (a ``text`` column in CSV or JSON Lines).

Parsing works on bytes so the core never touches S3; the workflow fetches the object
through ``ObjectStore``. Every problem with the data names the column and row a person
would look at in their own file (rows count from 1, after the header).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maaskit.errors import InvalidRequest
from maaskit.training.spec import DatasetFormat

FloatArray = npt.NDArray[np.float64]
TEXT_COLUMN = "text"


@dataclass(frozen=True)
class Table:
    """Numeric features and a raw target column (numbers, or strings for class names)."""

    features: FloatArray  # [rows, columns]
    target: npt.NDArray[Any]  # [rows]: float64 when every value is a number, else str
    feature_names: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])


@dataclass(frozen=True)
class TextTable:
    """Texts and a raw label column, for fine-tuning a pretrained text encoder."""

    texts: tuple[str, ...]
    target: npt.NDArray[Any]  # [rows]: float64 when every label is a number, else str

    @property
    def rows(self) -> int:
        return len(self.texts)


def read_table(
    data: bytes,
    fmt: DatasetFormat,
    *,
    target: str | None,
    features: Sequence[str] | None = None,
) -> Table:
    """Parse ``data`` and check every feature is a finite number."""
    if not data:
        raise InvalidRequest("the dataset file is empty")
    if fmt == "csv":
        table = _read_csv(data, target, features)
    elif fmt == "jsonl":
        table = _read_jsonl(data, target, features)
    else:
        table = _read_npz(data, target or "y", features)
    if table.rows == 0:
        raise InvalidRequest("the dataset has no rows")
    _check_finite(table)
    return table


def _select(
    columns: Sequence[str], target: str | None, wanted: Sequence[str] | None, what: str
) -> list[int]:
    """Indices of the feature columns: ``wanted`` in its order, or all but the target."""
    if target is not None and target not in columns:
        raise InvalidRequest(
            f"target column {target!r} is not in the {what}; columns: {', '.join(columns)}"
        )
    if wanted is None:
        return [i for i, name in enumerate(columns) if name != target]
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise InvalidRequest(
            f"feature column(s) {', '.join(map(repr, missing))} not in the {what}; "
            f"columns: {', '.join(columns)}"
        )
    return [list(columns).index(name) for name in wanted]


def _target_values(values: Sequence[str], name: str) -> npt.NDArray[Any]:
    """Numbers when every value parses as one, else the strings (class names)."""
    blank = next((i for i, value in enumerate(values) if value == ""), None)
    if blank is not None:
        raise InvalidRequest(f"target column {name!r} is empty in row {blank + 1}")
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=np.str_)


def _numeric_column_error(cells: Sequence[Sequence[Any]], names: Sequence[str]) -> InvalidRequest:
    for row_number, row in enumerate(cells, start=1):
        for name, cell in zip(names, row, strict=True):
            if cell is None or cell == "":
                return InvalidRequest(
                    f"feature column {name!r} has a missing value in row {row_number}"
                )
            if isinstance(cell, bool) or not _is_number(cell):
                return InvalidRequest(
                    f"feature column {name!r} is not numeric: row {row_number} has {cell!r}; "
                    'encode categories as numbers or leave the column out with "features"'
                )
    return InvalidRequest("the features are not all numeric")


def _is_number(cell: Any) -> bool:
    if isinstance(cell, int | float):
        return True
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _to_float_matrix(cells: list[list[Any]], names: Sequence[str]) -> FloatArray:
    try:
        matrix = np.array(cells, dtype=np.float64)
    except (TypeError, ValueError):
        raise _numeric_column_error(cells, names) from None
    if any(isinstance(cell, bool) for row in cells[:1] for cell in row):
        raise _numeric_column_error(cells, names)
    return matrix.reshape(len(cells), len(names))


def _csv_rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header's column names and the non-blank rows, each as long as the header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InvalidRequest(f"the CSV file is not UTF-8 text (byte {err.start})") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or all(not cell.strip() for cell in header):
        raise InvalidRequest("the CSV file has no header row: the first line must name the columns")
    columns = [cell.strip() for cell in header]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    if duplicated:
        raise InvalidRequest(f"the CSV header names a column twice: {', '.join(duplicated)}")
    rows: list[list[str]] = []
    for row_number, row in enumerate(reader, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise InvalidRequest(
                f"CSV row {row_number} has {len(row)} fields; the header has {len(columns)}"
            )
        rows.append(row)
    return columns, rows


def _read_csv(data: bytes, target: str | None, wanted: Sequence[str] | None) -> Table:
    columns, rows = _csv_rows(data)
    chosen = _select(columns, target, wanted, "CSV header")
    target_index = columns.index(target) if target is not None else None
    feature_cells = [[row[i].strip() for i in chosen] for row in rows]
    target_cells = [row[target_index].strip() for row in rows] if target_index is not None else []
    names = [columns[i] for i in chosen]
    features = _to_float_matrix(feature_cells, names)
    return Table(
        features=features,
        target=_target_values(target_cells, target or ""),
        feature_names=tuple(names),
    )


def _jsonl_records(data: bytes) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for line_number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InvalidRequest(f"JSON Lines line {line_number} is not JSON: {err}") from None
        if not isinstance(record, dict):
            raise InvalidRequest(f"JSON Lines line {line_number} is not an object")
        records.append(record)
    if not records:
        raise InvalidRequest("the dataset has no rows")
    return records


def _jsonl_label(record: dict[str, Any], target: str, row_number: int) -> str:
    value = record[target]
    if value is None or isinstance(value, dict | list):
        raise InvalidRequest(
            f"target {target!r} in record {row_number} must be a number or a string"
        )
    return value if isinstance(value, str) else json.dumps(value)


def _read_jsonl(data: bytes, target: str | None, wanted: Sequence[str] | None) -> Table:
    records = _jsonl_records(data)
    columns = list(records[0])
    chosen = _select(columns, target, wanted, "first JSON Lines record")
    names = [columns[i] for i in chosen]
    feature_cells: list[list[Any]] = []
    target_cells: list[str] = []
    for row_number, record in enumerate(records, start=1):
        missing = [name for name in (*names, *([target] if target else [])) if name not in record]
        if missing:
            raise InvalidRequest(
                f"JSON Lines record {row_number} lacks {', '.join(map(repr, missing))}"
            )
        feature_cells.append([record[name] for name in names])
        if target is not None:
            target_cells.append(_jsonl_label(record, target, row_number))
    for row in feature_cells:
        for cell in row:
            if cell is None or isinstance(cell, bool | str | dict | list):
                raise _numeric_column_error(feature_cells, names)
    return Table(
        features=_to_float_matrix(feature_cells, names),
        target=_target_values(target_cells, target or ""),
        feature_names=tuple(names),
    )


def read_texts(data: bytes, fmt: DatasetFormat, *, target: str) -> TextTable:
    """Texts and their labels, for fine-tuning a text encoder: every text non-empty."""
    if not data:
        raise InvalidRequest("the dataset file is empty")
    if fmt == "csv":
        columns, rows = _csv_rows(data)
        _require_text_columns(columns, target, "CSV header")
        text_index, target_index = columns.index(TEXT_COLUMN), columns.index(target)
        texts: list[Any] = [row[text_index] for row in rows]
        labels = [row[target_index].strip() for row in rows]
    elif fmt == "jsonl":
        records = _jsonl_records(data)
        _require_text_columns(list(records[0]), target, "first JSON Lines record")
        texts, labels = [], []
        for row_number, record in enumerate(records, start=1):
            missing = [name for name in (TEXT_COLUMN, target) if name not in record]
            if missing:
                raise InvalidRequest(
                    f"JSON Lines record {row_number} lacks {', '.join(map(repr, missing))}"
                )
            texts.append(record[TEXT_COLUMN])
            labels.append(_jsonl_label(record, target, row_number))
    else:
        raise InvalidRequest(
            "a text dataset is a CSV file or JSON Lines with 'text' and label fields, not .npz"
        )
    if not texts:
        raise InvalidRequest("the dataset has no rows")
    for row_number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise InvalidRequest(
                f"{TEXT_COLUMN!r} in row {row_number} is {type(text).__name__}, not a string"
            )
        if not text.strip():
            raise InvalidRequest(
                f"{TEXT_COLUMN!r} is empty in row {row_number}: every row needs some text"
            )
    return TextTable(texts=tuple(texts), target=_target_values(labels, target))


def _require_text_columns(columns: Sequence[str], target: str, what: str) -> None:
    missing = [name for name in (TEXT_COLUMN, target) if name not in columns]
    if missing:
        raise InvalidRequest(
            f"a text dataset needs a {TEXT_COLUMN!r} column and the label column {target!r}; "
            f"the {what} lacks {', '.join(map(repr, missing))} (columns: {', '.join(columns)})"
        )


def _read_npz(data: bytes, target: str, wanted: Sequence[str] | None) -> Table:
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # numpy raises several types for a bad archive
        raise InvalidRequest(f"the .npz file cannot be read: {err}") from None
    with archive:
        keys = set(archive.files)
        if "X" not in keys or target not in keys:
            raise InvalidRequest(
                f".npz dataset needs arrays 'X' and {target!r}; it has {', '.join(sorted(keys))}"
            )
        try:
            x = archive["X"]
            y = archive[target]
            names_array = archive["feature_names"] if "feature_names" in keys else None
        except ValueError as err:
            raise InvalidRequest(f".npz arrays must not be object arrays: {err}") from None
    if x.ndim != 2:
        raise InvalidRequest(f".npz 'X' must be 2-D [rows, features], got shape {x.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InvalidRequest(
            f".npz {target!r} must be 1-D with one value per row of X ({x.shape[0]}), "
            f"got shape {y.shape}"
        )
    if names_array is not None:
        columns = [str(name) for name in names_array.tolist()]
        if len(columns) != x.shape[1]:
            raise InvalidRequest(".npz 'feature_names' must name every column of X")
    else:
        columns = [f"x{i}" for i in range(x.shape[1])]
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InvalidRequest(f".npz 'X' must be numeric, got dtype {x.dtype}")
    chosen = _select(columns, None, wanted, ".npz feature_names")
    if np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_:
        target_values: npt.NDArray[Any] = y.astype(np.float64)
    else:
        target_values = y.astype(np.str_)
    return Table(
        features=np.ascontiguousarray(x[:, chosen], dtype=np.float64),
        target=target_values,
        feature_names=tuple(columns[i] for i in chosen),
    )


def _check_finite(table: Table) -> None:
    bad = ~np.isfinite(table.features)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        value = float(table.features[row, column])
        what = "NaN" if math.isnan(value) else "an infinite value"
        count = int(bad.sum())
        raise InvalidRequest(
            f"feature column {table.feature_names[column]!r} has {what} in row {row + 1} "
            f"({count} non-finite value(s) in all): fill or drop them before training"
        )
