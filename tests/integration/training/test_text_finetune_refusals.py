"""A text fine-tune refused at Prepare: a clear error, a recorded status, registry untouched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import models, text
from tests.support.training_stack import TrainingStack

from .text_data import finetune_spec

DATASET = "s3://maaskit-test-models/datasets/"
GOOD_CSV = b"text,label\n" + b"".join(
    f"the {word} movie,{'good' if i % 2 else 'bad'}\n".encode()
    for i, word in enumerate(["great", "awful", "good", "bad"] * 10)
)


def publish_bases(stack: TrainingStack) -> None:
    """An encoder (embedding output), a text classifier, and a numeric model."""
    vocab = text.vocab_size()
    encoder, _ = text.embedding_model(vocab)
    stack.registry.publish(
        "words", encoder, files=text.files(), processing=text.embedding_processing(),
        aliases=("production",),
    )  # fmt: skip
    as_classes = {"kind": "classification", "from": "last_hidden_state", "apply": "softmax"}
    stack.registry.publish(
        "sentiment", encoder, files=text.files(),
        processing={**text.embedding_processing(), "output": as_classes}, aliases=("production",),
    )  # fmt: skip
    stack.registry.publish("plain", models.linear()[0], aliases=("production",))


def spec(**overrides: Any) -> dict[str, Any]:
    return finetune_spec(
        **{"model": "reviews", "dataset": DATASET + "reviews.csv", "base_model": {"name": "words"},
           "epochs": 2, "batch_size": 8, **overrides}
    )  # fmt: skip


CASES: list[tuple[str, dict[str, Any], bytes, str]] = [
    ("numeric-base", {"base_model": {"name": "plain"}}, GOOD_CSV,
     "base model 'plain' version 1 is neither a text package"),
    ("classifier-base", {"base_model": {"name": "sentiment"}}, GOOD_CSV,
     "output is 'classification', not an embedding"),
    ("no-text-column", {}, b"sentence,label\nthe movie,good\n",
     "a text dataset needs a 'text' column and the label column 'label'"),
    ("no-label-column", {"target": "stars"}, GOOD_CSV, "the CSV header lacks 'stars'"),
    ("empty-text", {}, b"text,label\nthe movie,good\n  ,bad\n", "'text' is empty in row 2"),
    ("empty-jsonl-text", {"dataset": DATASET + "reviews.jsonl"},
     b'{"text": "a movie", "label": "good"}\n{"text": "", "label": "bad"}\n',
     "'text' is empty in row 2"),
    ("features", {"features": ["text"]}, GOOD_CSV, '"features" does not apply'),
    ("freeze", {"base_model": {"name": "words", "freeze": [0]}}, GOOD_CSV,
     '"base_model.freeze" applies to numeric fine-tuning only'),
    ("regression", {"architecture": {"type": "linear"}}, GOOD_CSV, "trains a classifier"),
    ("one-class", {}, b"text,label\n" + b"the movie,good\n" * 20,
     "the target has a single class (good)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("run_id", "overrides", "upload", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_a_text_fine_tune_that_cannot_work_fails_at_prepare_and_publishes_nothing(
    stack: TrainingStack, run_id: str, overrides: dict[str, Any], upload: bytes, message: str
) -> None:
    # Given three published bases and a dataset, one thing wrong
    publish_bases(stack)
    before = {name: stack.registry.aliases(name) for name in stack.registry.list_models()}
    request = spec(**overrides)
    stack.store.put(request["dataset"].removeprefix("s3://maaskit-test-models/"), upload)
    # When the workflow runs it
    described = stack.run(request, run_id)
    # Then Prepare fails with a message a person can act on, before any embedding
    assert described["status"] == "FAILED"
    assert described["error"] == "InvalidRequest"
    assert message in described["cause"]
    assert message in stack.status(run_id)["message"]
    assert not stack.calls("TrainEmbedFunction")
    # And the registry is as it was
    assert {name: stack.registry.aliases(name) for name in stack.registry.list_models()} == before
