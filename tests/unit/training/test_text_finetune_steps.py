"""A text fine-tune's steps called in order, on a small word-level text package (no MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maaskit.onnxmodel.text import answer, output_names
from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from maaskit.serving.runtime import Runtime
from maaskit.training import workflow
from tests.support import text

from .helpers import spec_dict

GOOD = ["great", "good"]
BAD = ["awful", "bad"]


def reviews() -> bytes:
    lines = ["text,label"]
    for i in range(60):
        word = (GOOD if i % 2 else BAD)[i // 2 % 2]
        lines.append(f"the movie is {word},{'pos' if i % 2 else 'neg'}")
    return ("\n".join(lines) + "\n").encode()


def test_embed_resumes_across_invocations_then_training_exports_one_graph_that_serves_labels(
    store: ObjectStore, registry: Registry, tmp_path: Path
) -> None:
    # Given a word-level encoder published as a text package, and 60 labelled reviews
    encoder, _ = text.embedding_model(text.vocab_size(), dim=4)
    registry.publish(
        "words", encoder, files=text.files(), processing=text.embedding_processing(normalize=True),
        aliases=("production",),
    )  # fmt: skip
    store.put("datasets/reviews.csv", reviews())
    request = spec_dict(
        model="reviews", dataset="datasets/reviews.csv", base_model={"name": "words"},
        architecture={"type": "softmax"}, epochs=30, batch_size=8, validation_split=0.25,
    )  # fmt: skip
    runtime = Runtime(registry, cache_dir=tmp_path / "cache")
    # When Prepare plans the embedding and Embed runs one batch of 32 per invocation
    state = workflow.prepare_run(
        store, registry, {"request": request, "run_id": "reviews-1"}, max_dataset_bytes=10**6
    )
    assert state["embedding"] == {"next_batch": 0, "batches": 2, "done": False}
    assert "checkpoint" not in state
    invocations = 0
    while not state["embedding"]["done"]:
        state = workflow.embed_texts(store, runtime, state, time_budget=60.0, max_batches=1)
        invocations += 1
    # Then it took two invocations, and the last one wrote checkpoint 0 of a 4 -> 2 head
    assert invocations == 2
    assert state["checkpoint"] == "training/reviews-1/checkpoints/000000000.npz"
    record = store.get_json("training/reviews-1/run.json")
    assert record["architecture"]["layer_sizes"] == [4, 2]
    assert record["base_model"]["kind"] == "text-encoder"
    # When training, Evaluate, Export and Register follow as for numeric data
    while not state["done"]:
        state = workflow.train_steps(store, state, time_budget=60.0)
    state = workflow.evaluate(store, state)
    state = workflow.export(store, registry, state)
    state = workflow.register(store, registry, state)
    # Then the published package serves labels for texts
    manifest = registry.get_manifest("reviews", state["version"])
    assert manifest.processing is not None
    assert manifest.processing["output"]["labels"] == ["neg", "pos"]
    assert manifest.metadata["feature_names"] == ["text"]
    model = runtime.load("reviews", version=state["version"])
    assert model.encoder is not None
    assert model.processing is not None
    encoded = model.encoder.encode(["the movie is great", "the movie is awful"])
    outputs = answer(
        model.processing.output,
        model.run(encoded.feeds, output_names(model.processing.output)),
        encoded.attention_mask,
    )
    assert outputs["label"].tolist() == ["pos", "neg"]
    assert np.allclose(outputs["probabilities"].sum(axis=1), 1.0)
