from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

from maaskit.errors import InvalidRequest
from maaskit.training.datasets import read_table, read_texts


def csv_bytes(text: str) -> bytes:
    return text.strip().encode() + b"\n"


def npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def jsonl_bytes(*records: object) -> bytes:
    return b"\n".join(json.dumps(r).encode() for r in records)


def test_csv_with_header_gives_features_in_column_order_and_numeric_target() -> None:
    # Given a CSV with the target in the middle
    data = csv_bytes("a,label,b\n1,0,2.5\n3,1,-4\n")
    # When it is read
    table = read_table(data, "csv", target="label")
    # Then the target is out of the features and both are numbers
    assert table.feature_names == ("a", "b")
    np.testing.assert_array_equal(table.features, [[1.0, 2.5], [3.0, -4.0]])
    np.testing.assert_array_equal(table.target, [0.0, 1.0])


def test_csv_string_labels_stay_strings_and_features_can_be_chosen() -> None:
    data = csv_bytes("a,b,c,species\n1,2,3,setosa\n4,5,6,virginica\n")
    table = read_table(data, "csv", target="species", features=["c", "a"])
    assert table.feature_names == ("c", "a")
    np.testing.assert_array_equal(table.features, [[3.0, 1.0], [6.0, 4.0]])
    assert table.target.tolist() == ["setosa", "virginica"]


def test_jsonl_records_read_like_csv_rows() -> None:
    data = jsonl_bytes({"x": 1, "y": 2.0, "t": "cat"}, {"x": 3, "y": 4, "t": "dog"})
    table = read_table(data, "jsonl", target="t")
    assert table.feature_names == ("x", "y")
    np.testing.assert_array_equal(table.features, [[1, 2], [3, 4]])
    assert table.target.tolist() == ["cat", "dog"]


def test_npz_takes_x_and_y_and_optional_feature_names() -> None:
    data = npz_bytes(
        X=np.arange(6, dtype=np.float32).reshape(3, 2),
        y=np.array([0, 1, 0]),
        feature_names=np.array(["u", "v"]),
    )
    table = read_table(data, "npz", target=None)
    assert table.feature_names == ("u", "v")
    assert table.features.dtype == np.float64
    np.testing.assert_array_equal(table.target, [0.0, 1.0, 0.0])


BAD_DATA: list[tuple[bytes, str, str | None, str]] = [
    (csv_bytes("a,b\n1,2\n"), "csv", "label", "target column 'label' is not in the CSV header"),
    (csv_bytes("a,label\nx,1\n"), "csv", "label", "feature column 'a' is not numeric: row 1"),
    (csv_bytes("a,label\n1,1\n,0\n"), "csv", "label", "missing value in row 2"),
    (csv_bytes("a,label\n1,1\nnan,0\n"), "csv", "label", "column 'a' has NaN in row 2"),
    (csv_bytes("a,label\n1,1\ninf,0\n"), "csv", "label", "infinite value in row 2"),
    (csv_bytes("a,label\n1,1\n2\n"), "csv", "label", "CSV row 2 has 1 fields"),
    (csv_bytes("a,label\n1,\n"), "csv", "label", "target column 'label' is empty in row 1"),
    (csv_bytes("a,a,label\n1,2,3\n"), "csv", "label", "names a column twice"),
    (csv_bytes("a,label\n"), "csv", "label", "no rows"),
    (b"", "csv", "label", "empty"),
    (b"\xff\xfe\x00", "csv", "label", "not UTF-8"),
    (jsonl_bytes({"x": "high", "t": 1}), "jsonl", "t", "feature column 'x' is not numeric"),
    (jsonl_bytes({"x": True, "t": 1}), "jsonl", "t", "feature column 'x' is not numeric"),
    (jsonl_bytes({"x": 1, "t": 1}, {"t": 0}), "jsonl", "t", "record 2 lacks 'x'"),
    (jsonl_bytes({"x": None, "t": 1}), "jsonl", "t", "missing value in row 1"),
    (b'{"x": 1, "t": 1}\nnot json', "jsonl", "t", "line 2 is not JSON"),
    (jsonl_bytes([1, 2]), "jsonl", "t", "not an object"),
    (npz_bytes(X=np.zeros((2, 2))), "npz", None, "needs arrays 'X' and 'y'"),
    (npz_bytes(X=np.zeros(3), y=np.zeros(3)), "npz", None, "must be 2-D"),
    (npz_bytes(X=np.zeros((3, 2)), y=np.zeros(2)), "npz", None, "one value per row"),
    (npz_bytes(X=np.array([["a"], ["b"]]), y=np.zeros(2)), "npz", None, "must be numeric"),
    (b"not a zip", "npz", None, "cannot be read"),
]


@pytest.mark.parametrize(("data", "fmt", "target", "message"), BAD_DATA)
def test_each_bad_dataset_is_refused_with_a_message_naming_where(
    data: bytes, fmt: str, target: str | None, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_table(data, fmt, target=target)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_a_feature_column_not_in_the_file_is_named() -> None:
    with pytest.raises(InvalidRequest, match="'z' not in the CSV header"):
        read_table(csv_bytes("a,label\n1,0\n"), "csv", target="label", features=["z"])


# text datasets (fine-tuning a text encoder) ------------------------------------------


def test_text_csv_gives_texts_and_string_labels_with_commas_quoted() -> None:
    data = csv_bytes('label,text\nsport,"Goal, in the last minute"\nfood,Fresh bread\n')
    table = read_texts(data, "csv", target="label")
    assert table.texts == ("Goal, in the last minute", "Fresh bread")
    assert table.target.tolist() == ["sport", "food"]
    assert table.rows == 2


def test_text_jsonl_reads_like_the_csv_and_numeric_labels_stay_numbers() -> None:
    data = jsonl_bytes({"text": "a cat", "label": 1}, {"text": "a dog", "label": 0})
    table = read_texts(data, "jsonl", target="label")
    assert table.texts == ("a cat", "a dog")
    np.testing.assert_array_equal(table.target, [1.0, 0.0])


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (csv_bytes("sentence,label\nhello,a\n"), "csv", r"needs a 'text' column.*lacks 'text'"),
        (csv_bytes("text,intent\nhello,a\n"), "csv", r"label column 'label'.*lacks 'label'"),
        (csv_bytes("text,label\nhello,a\n   ,b\n"), "csv", "'text' is empty in row 2"),
        (csv_bytes("text,label\nhello,a\nbye,\n"), "csv", "target column 'label' is empty in row 2"),
        (jsonl_bytes({"text": "hi", "label": "a"}, {"text": 3, "label": "b"}), "jsonl",
         "'text' in row 2 is int, not a string"),
        (jsonl_bytes({"text": "hi", "label": "a"}, {"text": ""}), "jsonl",
         "record 2 lacks 'label'"),
        (jsonl_bytes({"text": "hi", "label": "a"}, {"text": "", "label": "b"}), "jsonl",
         "'text' is empty in row 2"),
        (csv_bytes("text,label\n"), "csv", "no rows"),
        (b"", "csv", "empty"),
        (npz_bytes(X=np.zeros((2, 2)), y=np.zeros(2)), "npz", "not .npz"),
    ],
)  # fmt: skip
def test_text_datasets_without_text_and_label_or_with_empty_texts_are_refused(
    data: bytes, fmt: Any, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        read_texts(data, fmt, target="label")
