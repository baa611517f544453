"""Fine-tuning the real MiniLM int8 encoder on labelled texts, through the state machine."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import orjson
import pytest

from maaskit.serving.runtime import Runtime
from maaskit.training import embedding, workflow
from maaskit.training.embedding import EmbeddingPlan, EmbeddingProgress, assemble, from_bytes
from maaskit.training.textbase import TextBase
from tests.integration.conftest import cold_start
from tests.support.events import FakeContext, api_event
from tests.support.training_stack import TrainingStack

from .text_data import UNSEEN, finetune_spec, publish_minilm, sentences, to_csv

pytestmark = pytest.mark.slow

# How the Lambda service names an invocation killed at its timeout; Retry matches it.
SandboxTimedout = type("Sandbox.Timedout", (Exception,), {})


def predict(text: str) -> tuple[int, Any]:
    """``POST /models/topics/predict`` with ``{"input": text}``, through the API handler."""
    api = cold_start("functions.api.app")  # a new sandbox, after the run published the model
    event = api_event("POST", "/models/topics/predict", {"input": text})
    response = api.lambda_handler(event, FakeContext())
    return response["statusCode"], orjson.loads(response["body"])


def test_minilm_fine_tuned_on_three_topics_serves_a_label_for_an_unseen_sentence(
    stack: TrainingStack,
) -> None:
    # Given MiniLM published as a text package, and 330 labelled sentences on three topics
    base = publish_minilm(stack.registry)
    stack.store.put("datasets/topics.csv", to_csv(sentences(110)))
    # When the training state machine fine-tunes a softmax head on it
    output = stack.output(stack.run(finetune_spec(), "topics-1"))
    # Then the texts were embedded in checkpointed batches (11 batches of 32, one invocation)
    assert output["embedding"] == {"next_batch": 11, "batches": 11, "done": True}
    assert all(call.error_type is None for call in stack.lambdas.invocations)
    # And the head reached a validation accuracy of at least 0.9
    manifest = stack.registry.get_manifest("topics", output["version"])
    assert manifest.metrics["val_accuracy"] >= 0.9
    # And the package is one graph taking the encoder's inputs, with the base's tokenizer,
    # its input block and a classification output carrying the labels
    graph = onnx.load_from_string(stack.store.get_bytes(manifest.artifact_key)).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest.files["tokenizer.json"].sha256 == base.files["tokenizer.json"].sha256
    assert manifest.processing is not None
    assert manifest.processing["input"] == base.processing["input"]
    assert manifest.processing["output"] == {
        "kind": "classification",
        "from": "probabilities",
        "apply": "none",
        "labels": ["food", "sport", "weather"],
    }
    assert manifest.metadata["training"]["parity"]["max_abs_diff"] <= 1e-4
    assert manifest.lineage["base_model"] == {
        "kind": "text-encoder", "name": "minilm", "version": 1, "sha256": base.sha256,
    }  # fmt: skip
    assert output["promoted"] is True
    # When the API serves the published package sentences no template wrote
    for text, topic in UNSEEN.items():
        status, reply = predict(text)
        # Then each gets its topic, with probabilities over the three labels
        assert status == 200, reply
        assert (reply["model"], reply["version"]) == ("topics", output["version"])
        assert reply["outputs"]["label"] == [topic], text
        assert np.asarray(reply["outputs"]["probabilities"]).shape == (1, 3)


def test_an_embedding_step_killed_mid_invocation_resumes_to_the_same_embeddings(
    stack: TrainingStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given 150 sentences (5 batches of 32) and at most 2 embedding batches per invocation
    publish_minilm(stack.registry)
    rows = sentences(50)
    stack.store.put("datasets/topics.csv", to_csv(rows))
    monkeypatch.setenv("MAASKIT_TRAINING_STEPS_PER_INVOCATION", "2")
    # And the second Embed invocation dies after saving one batch, before it returns
    original = embedding.embed_batches
    invocation = itertools.count(1)
    progress: list[EmbeddingProgress] = []

    def embed_then_die(*args: Any, **kwargs: Any) -> EmbeddingProgress:
        if next(invocation) != 2:
            progress.append(original(*args, **kwargs))
            return progress[-1]
        original(*args, **{**kwargs, "max_batches": 1})
        raise SandboxTimedout("Task timed out after 1 batch")

    monkeypatch.setattr(workflow, "embed_batches", embed_then_die)  # as workflow imported it
    # When the run goes through the state machine
    output = stack.output(stack.run(finetune_spec(epochs=2), "topics-kill"))
    # Then the killed invocation was retried and the run finished
    embeds = stack.calls("TrainEmbedFunction")
    assert [call.error_type for call in embeds] == [None, "Sandbox.Timedout", None]
    assert output["embedding"]["done"] is True
    # And the retry skipped the batch its killed attempt had saved, and computed the rest
    assert [(p.next_batch, p.embedded, p.skipped) for p in progress] == [(2, 2, 0), (5, 2, 1)]
    # And the saved embeddings equal the base encoder's, batch by batch, in one go
    plan = EmbeddingPlan(rows=len(rows))
    saved = assemble(
        plan,
        lambda batch: from_bytes(
            stack.store.get_bytes(f"training/topics-kill/data/embeddings/{batch:06d}.npy")
        ),
    )
    base = TextBase.from_lineage(stack.registry.get_manifest("topics", 1).lineage["base_model"])
    assert base is not None
    embed = base.embedder(Runtime(stack.registry, cache_dir=tmp_path / "reference"))
    texts = [text for text, _ in rows]
    expected = np.concatenate([embed(texts[plan.rows_of(b)]) for b in range(plan.batches)])
    np.testing.assert_array_equal(saved, expected)
