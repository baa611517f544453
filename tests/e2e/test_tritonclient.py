"""Open Inference Protocol V2 with a client nobody here wrote: Triton's own HTTP client.

A text model takes a ``BYTES`` input named ``text`` and answers with its embedding or its
label, over the local stack's real HTTP front, with the client used as its docs show it
(JSON tensors: ``binary_data=False``, since the binary extension is Triton's own).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from maaskit.local.stack import LocalStack
from tests.e2e.conftest import client_for
from tests.support import minilm
from tests.support.text import LABELS, publish_sentiment

httpclient = pytest.importorskip("tritonclient.http")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def triton(maaskit_stack: LocalStack) -> Iterator[Any]:
    registry = client_for(maaskit_stack).registry
    model, files = minilm.package()
    registry.publish("minilm", model, files=files, processing=minilm.PROCESSING)
    publish_sentiment(registry)
    client = httpclient.InferenceServerClient(url=urlsplit(maaskit_stack.api_url).netloc)
    try:
        yield client
    finally:
        client.close()


def _text_input(texts: list[str]) -> Any:
    tensor = httpclient.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(
        np.array([t.encode() for t in texts], dtype=object), binary_data=False
    )
    return tensor


def test_server_and_model_health_through_the_client(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("minilm")
    metadata = triton.get_model_metadata("minilm")
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]


def test_a_text_encoder_answers_triton_client_with_the_raw_paths_embedding(triton: Any) -> None:
    import onnxruntime as ort

    texts = ["A man is eating food.", "The stock market fell sharply today."]
    output = httpclient.InferRequestedOutput("embedding", binary_data=False)

    result = triton.infer("minilm", [_text_input(texts)], outputs=[output])

    embedding = result.as_numpy("embedding")
    session = ort.InferenceSession(str(minilm.model_path()), providers=["CPUExecutionProvider"])
    expected = minilm.raw_embeddings(session, texts)
    assert embedding.shape == expected.shape == (2, 384)
    cosine = (embedding * expected).sum(axis=1)
    assert np.all(cosine >= 0.9999), cosine


def test_a_text_classifier_answers_triton_client_with_labels(triton: Any) -> None:
    result = triton.infer("sentiment", [_text_input(["good day", "bad day"])])

    labels = result.as_numpy("label")
    probabilities = result.as_numpy("probabilities")
    assert labels.shape == (2,)
    assert {label.decode() if isinstance(label, bytes) else label for label in labels} <= set(
        LABELS
    )
    assert probabilities.shape == (2, len(LABELS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
