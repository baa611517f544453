"""A real pretrained model (int8 all-MiniLM-L6-v2) published and served through the handler."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from maaskit.registry.catalog import Registry
from tests.integration.conftest import Call
from tests.support import minilm

pytestmark = pytest.mark.slow


def test_minilm_through_the_api_equals_raw_onnxruntime(call: Call, registry: Registry) -> None:
    # Given the pretrained model published into the registry
    data = minilm.model_path().read_bytes()
    manifest = registry.publish("minilm", data)
    assert [s.name for s in manifest.signature.inputs] == [
        "input_ids",
        "attention_mask",
        "token_type_ids",
    ]
    assert manifest.signature.inputs[0].shape == ("batch", "sequence")
    inputs = minilm.tokenize([minilm.SENTENCE, "A second, shorter sentence."])
    # When it is called through the simple shape and through V2
    status, simple = call(
        "POST", "/models/minilm/predict", {"inputs": {k: v.tolist() for k, v in inputs.items()}}
    )
    assert status == 200, simple
    v2_request = {
        "inputs": [
            {"name": k, "shape": list(v.shape), "datatype": "INT64", "data": v.ravel().tolist()}
            for k, v in inputs.items()
        ]
    }
    status, v2 = call("POST", "/v2/models/minilm/infer", v2_request)
    assert status == 200, v2
    # Then both equal raw onnxruntime on the same inputs
    [expected] = ort.InferenceSession(str(minilm.model_path())).run(["last_hidden_state"], inputs)
    got = np.array(simple["outputs"]["last_hidden_state"], dtype=np.float32)
    assert got.shape == expected.shape == (2, inputs["input_ids"].shape[1], 384)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    [output] = v2["outputs"]
    assert output["shape"] == list(expected.shape)
    np.testing.assert_allclose(
        np.array(output["data"], np.float32).reshape(expected.shape), expected, atol=1e-5
    )
    # And a token id outside the vocabulary is a client error, not a crash
    bad = {k: v.tolist() for k, v in inputs.items()}
    bad["input_ids"][0][1] = 10_000_000
    status, body = call("POST", "/models/minilm/predict", {"inputs": bad})
    assert status == 422
    assert "could not run on this input" in body["error"]


def test_minilm_text_package_through_the_api_equals_the_raw_path_and_ranks_meaning(
    call: Call, registry: Registry
) -> None:
    # Given the pretrained model published with its tokenizer, mean pooling and L2 norm
    model, files = minilm.package()
    registry.publish("minilm", model, files=files, processing=minilm.PROCESSING)
    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply today.",
    ]
    # When the sentences are posted as text
    status, body = call("POST", "/models/minilm/predict", {"input": sentences})
    assert status == 200, body
    got = np.array(body["outputs"]["embedding"], np.float32)
    # Then they equal the raw tokenizer + session.run + mean pooling + L2 path
    raw = minilm.raw_embeddings(ort.InferenceSession(str(minilm.model_path())), sentences)
    assert got.shape == raw.shape == (3, 384)
    cosine = (got * raw).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(raw, axis=1)
    assert cosine.min() >= 0.9999
    # And eating is closer to eating than to the stock market
    assert got[0] @ got[1] > got[0] @ got[2]
    # And the first example anyone tries answers one embedding
    status, body = call("POST", "/models/minilm/predict", {"input": "Hello, world!"})
    assert status == 200, body
    assert np.array(body["outputs"]["embedding"]).shape == (1, 384)
