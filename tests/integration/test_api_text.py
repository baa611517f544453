"""Text in, answers out, through the API handler: the simple shape and V2."""

from __future__ import annotations

import numpy as np
import pytest

from maaskit.registry.catalog import Registry
from tests.integration.conftest import Call
from tests.support import models, text

LABELS = text.LABELS


@pytest.fixture
def words(registry: Registry) -> np.ndarray:
    return text.publish_words(registry)


@pytest.fixture
def sentiment(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    return text.publish_sentiment(registry)


def mean_rows(weights: np.ndarray, ids: list[int]) -> np.ndarray:
    result: np.ndarray = weights[ids].mean(axis=0)
    return result


def test_a_string_returns_its_embedding(call: Call, words: np.ndarray) -> None:
    status, body = call("POST", "/models/words/predict", {"input": "hello world"})
    assert status == 200, body
    assert body["model"] == "words"
    assert body["version"] == 1
    assert set(body["outputs"]) == {"embedding"}
    np.testing.assert_allclose(
        body["outputs"]["embedding"], [mean_rows(words, [2, 4, 5, 3])], rtol=1e-5
    )
    assert "truncated" not in body


def test_a_list_of_strings_is_one_batch_each_pooled_over_its_own_tokens(
    call: Call, words: np.ndarray
) -> None:
    status, body = call("POST", "/models/words/predict", {"input": ["good", "the movie"]})
    assert status == 200, body
    np.testing.assert_allclose(
        body["outputs"]["embedding"],
        [mean_rows(words, [2, 6, 3]), mean_rows(words, [2, 11, 8, 3])],
        rtol=1e-5,
    )


def test_a_classifier_returns_labels_and_probabilities(
    call: Call, sentiment: tuple[np.ndarray, np.ndarray]
) -> None:
    weights, head = sentiment
    status, body = call("POST", "/models/sentiment/predict", {"input": ["good movie", "bad"]})
    assert status == 200, body
    # (this small model takes no attention mask: "bad" is averaged with its padding)
    logits = np.stack([mean_rows(weights, [2, 6, 8, 3]), mean_rows(weights, [2, 7, 3, 0])]) @ head
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(body["outputs"]["probabilities"], expected, rtol=1e-5)
    assert body["outputs"]["label"] == [LABELS[i] for i in expected.argmax(axis=1)]


def test_text_over_max_length_is_truncated_and_said_so_unless_refused(
    call: Call, words: np.ndarray
) -> None:
    request = {"input": ["good", "the movie is great", "hello"]}
    status, body = call("POST", "/models/words/predict", request)
    assert status == 200, body
    assert body["truncated"] == [1]
    np.testing.assert_allclose(
        body["outputs"]["embedding"][1], mean_rows(words, [2, 11, 8, 13, 3]), rtol=1e-5
    )
    status, body = call("POST", "/models/words/predict", request, query={"truncate": "false"})
    assert status == 400
    assert "text 1 is longer than this model's 5 tokens" in body["error"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"input": ""}, "item 0 is an empty string"),
        ({"input": ["good", 3]}, "item 1 is int, not a string: this model takes text"),
        ({"input": [[1, 2]]}, "item 0 is list, not a string"),
        ({"inputs": {"input_ids": [[1]]}}, "this model takes one text input named 'text'"),
    ],
)
def test_bad_text_requests_are_400s_saying_what_the_model_takes(
    call: Call, words: np.ndarray, payload: dict[str, object], message: str
) -> None:
    status, body = call("POST", "/models/words/predict", payload)
    assert status == 400
    assert message in body["error"]


def test_a_string_sent_to_a_numeric_model_is_a_400_naming_its_inputs(
    call: Call, registry: Registry
) -> None:
    registry.publish("iris", models.linear()[0])
    status, body = call("POST", "/models/iris/predict", {"input": "Hello, world!"})
    assert status == 400
    assert "this model takes numbers, not text: 'input' (FP32 [-1, 4])" in body["error"]


def test_a_raw_model_keeps_todays_reply(call: Call, registry: Registry) -> None:
    data, weights, bias = models.linear()
    registry.publish("iris", data)
    status, body = call("POST", "/models/iris/predict", {"input": [[1.0, 2.0, 3.0, 4.0]]})
    assert status == 200
    assert set(body) == {"model", "version", "outputs"}
    np.testing.assert_allclose(
        body["outputs"]["output"],
        np.array([[1.0, 2.0, 3.0, 4.0]], np.float32) @ weights + bias,
        rtol=1e-5,
    )


def test_a_bad_truncate_value_is_a_400(call: Call, words: np.ndarray) -> None:
    status, body = call(
        "POST", "/models/words/predict", {"input": "good"}, query={"truncate": "maybe"}
    )
    assert status == 400
    assert "truncate must be true or false" in body["error"]


# Open Inference Protocol V2 -------------------------------------------------------------


def tritonclient_request(texts: list[str], outputs: list[str]) -> dict[str, object]:
    """The JSON body tritonclient's HTTP client sends for a BYTES input (binary_data off)."""
    return {
        "inputs": [{"name": "text", "shape": [len(texts), 1], "datatype": "BYTES", "data": texts}],
        "outputs": [{"name": n, "parameters": {"binary_data": False}} for n in outputs],
    }


def test_v2_metadata_shows_the_text_input_and_the_answers_not_the_token_tensors(
    call: Call, sentiment: tuple[np.ndarray, np.ndarray]
) -> None:
    status, body = call("GET", "/v2/models/sentiment")
    assert status == 200, body
    assert body["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert body["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]


def test_v2_infer_takes_texts_as_bytes_and_returns_the_declared_answers(
    call: Call, sentiment: tuple[np.ndarray, np.ndarray], words: np.ndarray
) -> None:
    status, body = call(
        "POST", "/v2/models/sentiment/infer", tritonclient_request(["good movie", "bad"], ["label"])
    )
    assert status == 200, body
    [label] = body["outputs"]
    assert label["name"] == "label"
    assert label["datatype"] == "BYTES"
    assert label["shape"] == [2]
    assert set(label["data"]) <= set(LABELS)
    status, body = call(
        "POST",
        "/v2/models/words/infer",
        tritonclient_request(["the movie is great"], ["embedding"]),
    )
    assert status == 200, body
    [embedding] = body["outputs"]
    assert embedding["shape"] == [1, 4]
    assert body["parameters"] == {"truncated": [0]}
    status, body = call("POST", "/v2/models/words/infer", tritonclient_request([""], []))
    assert status == 400
    assert "empty string" in body["error"]
