"""Batch keys and the choice of model version, without S3."""

from __future__ import annotations

import pytest

from maaskit.batch.keys import UnsupportedFormat, parse_batch_key, rejected_report_key
from maaskit.batch.selection import ModelChoice, choose_model
from maaskit.errors import InvalidName, InvalidRequest
from maaskit.registry.safekeys import UnsafeKey


def test_key_is_mirrored_to_output_and_report() -> None:
    key = parse_batch_key("batch/in/iris@production/2026/06/rows part=1.CSV")
    assert (key.model, key.ref, key.path, key.format) == (
        "iris",
        "production",
        "2026/06/rows part=1.CSV",
        "csv",
    )
    assert key.output_key == "batch/out/iris@production/2026/06/rows part=1.CSV"
    assert key.report_key == key.output_key + ".report.json"


def test_unicode_letters_are_fine() -> None:
    assert parse_batch_key("batch/in/iris/données été.jsonl").path == "données été.jsonl"


@pytest.mark.parametrize(
    "key",
    [
        "batch/in/iris/readme.txt",
        "batch/in/iris/folder/",
        "datasets/x.csv",
        "batch/in/iris/x.csv.gz",
    ],
)
def test_files_that_are_not_batch_inputs(key: str) -> None:
    with pytest.raises(UnsupportedFormat):
        parse_batch_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "batch/in/iris/../x.csv",
        "batch/in/../models/x.csv",
        "batch/in/iris/%2e%2e/x.csv",
        "batch/in/iris/x;rm.csv",
        "batch/in/iris/x\n.csv",
        "batch/in/iris/" + "a" * 1100 + ".csv",
    ],
)
def test_unsafe_keys(key: str) -> None:
    with pytest.raises(UnsafeKey):
        parse_batch_key(key)


def test_rejected_reports_are_named_by_hash() -> None:
    first = rejected_report_key("batch/in/iris/../x.csv")
    assert first.startswith("batch/out/_rejected/")
    assert first.endswith(".report.json")
    assert ".." not in first
    assert first != rejected_report_key("batch/in/iris/../y.csv")


def test_choice_from_key_or_metadata() -> None:
    assert choose_model(parse_batch_key("batch/in/iris/x.csv"), {}) == ModelChoice("iris")
    assert choose_model(parse_batch_key("batch/in/iris@3/x.csv"), {}) == ModelChoice(
        "iris", 3, None, "key"
    )
    meta = {"Model-Alias": " staging "}
    assert choose_model(parse_batch_key("batch/in/iris/x.csv"), meta) == ModelChoice(
        "iris", None, "staging", "metadata"
    )
    # the same choice twice is not a conflict
    same = choose_model(parse_batch_key("batch/in/iris@2/x.csv"), {"model-version": "2"})
    assert same.version == 2


@pytest.mark.parametrize(
    ("key", "metadata", "error", "message"),
    [
        ("batch/in/iris@3/x.csv", {"model-alias": "production"}, InvalidRequest, "more than one"),
        (
            "batch/in/iris/x.csv",
            {"model-version": "prod"},
            InvalidRequest,
            "must be a version number",
        ),
        ("batch/in/iris@0/x.csv", {}, InvalidName, "versions start at 1"),
        ("batch/in/iris@Prod/x.csv", {}, InvalidRequest, "invalid alias 'Prod'"),
        ("batch/in/IRIS/x.csv", {}, InvalidName, "invalid model name 'IRIS'"),
    ],
)
def test_bad_choices(
    key: str, metadata: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        choose_model(parse_batch_key(key), metadata)
    assert message in str(caught.value)
