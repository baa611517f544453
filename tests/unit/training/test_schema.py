"""The training spec's JSON Schema: generated from the models, published in README."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from maaskit.training.spec import parse_spec, spec_schema

from .helpers import spec_dict

README = Path(__file__).resolve().parents[3] / "README.md"
_PUBLISHED = re.compile(
    r"<summary>The training spec's JSON Schema.*?</summary>\s*```json\n(?P<schema>.*?)\n```",
    re.DOTALL,
)
# A spec given to start-execution in a shell command: --input '{...}', with the bucket
# spliced in as '"$BUCKET"'.
_EXAMPLE = re.compile(r"--input '(?P<spec>\{.*?\})'\n", re.DOTALL)


def readme_examples() -> list[dict[str, Any]]:
    text = README.read_text(encoding="utf-8")
    return [
        json.loads(match["spec"].replace("'\"$BUCKET\"'", "BUCKET"))
        for match in _EXAMPLE.finditer(text)
        if '"architecture"' in match["spec"]  # not the batch state machine's input
    ]


def validator() -> jsonschema.Draft202012Validator:
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_schema_published_in_readme_is_the_generated_one() -> None:
    # Given README's published schema
    published = _PUBLISHED.search(README.read_text(encoding="utf-8"))
    assert published is not None, "README has no published training spec schema"
    # Then it is what `maaskit train schema` prints today (regenerate it if this fails)
    assert json.loads(published["schema"]) == spec_schema()
    assert published["schema"] == json.dumps(spec_schema(), indent=2)


def test_readme_example_specs_are_valid_against_the_schema_and_the_parser() -> None:
    examples = readme_examples()
    assert len(examples) >= 2  # the digits run and the text fine-tune
    for example in examples:
        validator().validate(example)
        parse_spec(example)


@pytest.mark.parametrize(
    "overrides",
    [
        {"optimizer": {"type": "adam", "learning_rate": 0.1, "beta1": 0.8}, "workers": 4},
        {"optimizer": {"type": "momentum", "learning_rate": 0.1}, "lr_schedule": {"type": "step"}},
        {"base_model": {"name": "base", "version": 3, "freeze": [0]}, "patience": 2},
        {"dataset": "s3://b/d/x.txt", "format": "csv", "features": ["a", "b"]},
    ],
)
def test_a_spec_the_parser_accepts_is_valid_against_the_schema(overrides: dict[str, Any]) -> None:
    spec = spec_dict(**overrides)
    parse_spec(spec)
    validator().validate(spec)
    validator().validate(parse_spec(spec).to_dict())  # the normalised form as well


@pytest.mark.parametrize(
    "overrides",
    [
        {"paitence": 3},
        {"optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}},
        {"optimizer": {"type": "adamw", "learning_rate": 0.1}},
        {"architecture": {"type": "mlp", "hidden": [0]}},
        {"epochs": 0},
        {"workers": 65},
        {"validation_split": 1.0},
        {"lr_schedule": {"type": "cosine", "gamma": 0.5}},
    ],
)
def test_the_schema_refuses_what_the_parser_refuses_field_by_field(
    overrides: dict[str, Any],
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(spec_dict(**overrides))
