"""A labelled text set built from templates: three topics a sentence encoder tells apart."""

from __future__ import annotations

import csv
import io
import itertools
import random
from typing import Any

from tests.support import minilm

TOPICS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "weather": (
        [
            "{thing} is expected in {place} {when}.",
            "The forecast says {thing} will reach {place} {when}.",
            "{thing} kept everyone indoors in {place} {when}.",
        ],
        {
            "thing": ["Heavy rain", "Light snow", "A strong wind", "Thick fog", "A thunderstorm",
                      "Bright sunshine", "Freezing hail", "A heatwave"],
            "place": ["London", "the valley", "the north", "Paris", "the coast"],
            "when": ["tomorrow", "this weekend", "tonight", "on Monday"],
        },
    ),
    "food": (
        [
            "My {who} cooked {dish} for dinner {when}.",
            "We ordered {dish} at the restaurant {when}.",
            "The recipe for {dish} that my {who} likes takes an hour.",
        ],
        {
            "who": ["mother", "brother", "neighbour", "friend", "grandfather"],
            "dish": ["pasta", "a curry", "fresh bread", "a chocolate cake", "vegetable soup",
                     "grilled fish", "pancakes", "a rice salad"],
            "when": ["yesterday", "last night", "on Sunday", "this evening"],
        },
    ),
    "sport": (
        [
            "{team} won {event} {when}.",
            "The striker scored twice as {team} won {event}.",
            "{team} lost {event} after extra time {when}.",
        ],
        {
            "team": ["The home team", "Our club", "The national side", "The visitors",
                     "The champions"],
            "event": ["the final", "the match", "the derby", "the cup tie", "the league game"],
            "when": ["on Saturday", "last season", "yesterday", "in the rain"],
        },
    ),
}  # fmt: skip

# Sentences no template writes, with the topic a fine-tuned model should give them.
UNSEEN = {
    "Snow and icy winds are forecast for the mountains.": "weather",
    "She fried some eggs and toast for breakfast.": "food",
    "The goalkeeper saved a penalty in the final minute of the game.": "sport",
}


def sentences(per_topic: int, seed: int = 0) -> list[tuple[str, str]]:
    """``per_topic`` distinct sentences of each topic, shuffled."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for topic, (templates, slots) in TOPICS.items():
        made = set()
        for template in templates:
            names = [name for name in slots if "{" + name + "}" in template]
            for values in itertools.product(*(slots[name] for name in names)):
                made.add(template.format(**dict(zip(names, values, strict=True))))
        chosen = rng.sample(sorted(made), per_topic)
        rows += [(text, topic) for text in chosen]
    rng.shuffle(rows)
    assert not set(UNSEEN) & {text for text, _ in rows}
    return rows


def to_csv(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return out.getvalue().encode()


def publish_minilm(registry: Any, name: str = "minilm", max_length: int = 32) -> Any:
    """The real int8 all-MiniLM-L6-v2 as a text package, production alias on it."""
    model, files = minilm.package()
    processing: dict[str, Any] = {
        "input": {**minilm.PROCESSING["input"], "max_length": max_length},
        "output": minilm.PROCESSING["output"],
    }
    return registry.publish(
        name, model, files=files, processing=processing, aliases=("production",)
    )


def finetune_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": "topics",
        "dataset": "s3://maaskit-test-models/datasets/topics.csv",
        "target": "label",
        "base_model": {"name": "minilm"},
        "architecture": {"type": "softmax"},
        "epochs": 20,
        "batch_size": 32,
        "optimizer": {"type": "adam", "learning_rate": 0.01},
        "validation_split": 0.2,
        "seed": 0,
    }
    spec.update(overrides)
    return spec
