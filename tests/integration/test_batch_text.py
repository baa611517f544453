"""Batch predictions of text models: JSON Lines of strings or {"input": ...}, CSV's text column."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from maaskit.registry import Registry
from maaskit.store import ObjectStore
from tests.integration.test_batch import Drop, batch, drop, notify  # noqa: F401 (fixtures)
from tests.support import text

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture
def words(registry: Registry) -> np.ndarray:
    model, weights = text.embedding_model(text.vocab_size())
    registry.publish(
        "words", model, files=text.files(), processing=text.embedding_processing(max_length=5)
    )
    return weights


def lines_of(store: ObjectStore, key: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in store.get_bytes(key).splitlines()]


def test_json_lines_of_strings_and_inputs_become_embeddings_and_bad_lines_fail_alone(
    drop: Drop, store: ObjectStore, words: np.ndarray
) -> None:
    # Given lines of bare strings and {"input": ...}, with an empty text, a number and
    # bytes that are not UTF-8 among them
    body = b"\n".join(
        [
            b'"hello world"',
            b'{"input": "good movie"}',
            b'""',
            b'{"input": 7}',
            b'"caf\xe9 bad"',
            b'{"input": ["the", "a movie"]}',
        ]
    )
    # When the file lands under batch/in/words/
    outcome = drop("batch/in/words/reviews.jsonl", body)
    # Then every good line has its embedding, in order, and each bad one is in the report
    assert (outcome["rows_in"], outcome["rows_out"], outcome["rows_failed"]) == (6, 3, 3)
    out = lines_of(store, "batch/out/words/reviews.jsonl")
    assert [line["line"] for line in out] == [1, 2, 6]
    np.testing.assert_allclose(
        out[0]["outputs"]["embedding"], words[[2, 4, 5, 3]].mean(axis=0), rtol=1e-5
    )
    assert np.array(out[2]["outputs"]["embedding"]).shape == (2, 4)
    report = store.get_json("batch/out/words/reviews.jsonl.report.json")
    failures = {f["line"]: f["reason"] for f in report["failures"]}
    assert set(failures) == {3, 4, 5}
    assert "empty string" in failures[3]
    assert "strings" in failures[4]
    assert "UTF-8" in failures[5]


def test_a_csv_text_column_among_others_is_classified(
    drop: Drop, store: ObjectStore, registry: Registry
) -> None:
    model, _, _ = text.classifier_model(text.vocab_size(), classes=3)
    registry.publish(
        "sentiment", model, files=text.files(), processing=text.classification_processing(LABELS)
    )
    body = b'id,text\n1,good movie\n2,"the movie, is bad"\n3,\xff\xfe\n'
    outcome = drop("batch/in/sentiment/reviews.csv", body)
    assert (outcome["rows_in"], outcome["rows_out"], outcome["rows_failed"]) == (3, 2, 1)
    rows = store.get_bytes("batch/out/sentiment/reviews.csv").decode().splitlines()
    assert rows[0] == "line,label,probabilities_0,probabilities_1,probabilities_2"
    assert [row.split(",")[1] in LABELS for row in rows[1:]] == [True, True]
    report = store.get_json("batch/out/sentiment/reviews.csv.report.json")
    assert [(f["line"], f["reason"]) for f in report["failures"]] == [
        (4, "the line is not valid UTF-8")
    ]
