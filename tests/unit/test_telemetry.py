from __future__ import annotations

import json

from maaskit.telemetry import Logger, Metrics


def test_log_records_carry_the_bound_request_keys_and_extras() -> None:
    # Given a logger bound to a request's ids
    lines: list[str] = []
    logger = Logger("maaskit", "INFO", write=lines.append)
    logger.bind(correlation_id="req-1", function_request_id="lambda-1")
    # When it logs below and at its level
    logger.debug("hidden")
    logger.info("request refused", status=400)
    # Then only the INFO record is written, as one JSON line with the ids
    assert len(lines) == 1
    assert lines[0].endswith("\n")
    record = json.loads(lines[0])
    assert record["level"] == "INFO"
    assert record["message"] == "request refused"
    assert record["correlation_id"] == "req-1"
    assert record["function_request_id"] == "lambda-1"
    assert record["service"] == "maaskit"
    assert record["status"] == 400
    assert record["timestamp"].endswith("Z")


def test_exceptions_are_logged_with_their_traceback() -> None:
    lines: list[str] = []
    logger = Logger("maaskit", write=lines.append)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("unexpected error")
    assert "ValueError: boom" in json.loads(lines[0])["exception"]


def test_metrics_are_emf_records_cloudwatch_can_read() -> None:
    # Given metrics with a model and version dimension
    lines: list[str] = []
    metrics = Metrics("maaskit", "api", write=lines.append)
    for value in (1.5, 2.5):
        metrics.record("InferenceMs", value, "Milliseconds", {"model": "m", "version": "3"})
    # Then each value is one EMF record naming its namespace, dimensions and unit
    records = [json.loads(line) for line in lines]
    assert [r["InferenceMs"] for r in records] == [1.5, 2.5]
    directive = records[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive == {
        "Namespace": "maaskit",
        "Dimensions": [["service", "model", "version"]],
        "Metrics": [{"Name": "InferenceMs", "Unit": "Milliseconds"}],
    }
    assert (records[0]["service"], records[0]["model"], records[0]["version"]) == ("api", "m", "3")
    assert isinstance(records[0]["_aws"]["Timestamp"], int)


def test_a_metric_named_like_a_dimension_is_recorded_as_a_merged_document() -> None:
    # Given metrics whose names collide with the record's keys or need escaping
    lines: list[str] = []
    metrics = Metrics("maaskit", "api", write=lines.append)
    # When each is recorded twice (the second from what the first encoded once)
    for _ in range(2):
        metrics.record("model", 2.0, "Count", {"model": "m"})
        metrics.record("service", 3, "Count")
        metrics.record('odd "name"', 0.25, "Count", {'di"m': "a\nb"})
    # Then every record is the document a dict merge of its keys makes, the same each time
    records = [json.loads(line) for line in lines]
    for record in records:
        assert isinstance(record["_aws"].pop("Timestamp"), int)
    assert records[:3] == records[3:]
    model, service, odd = ({k: v for k, v in r.items() if k != "_aws"} for r in records[:3])
    assert model == {"service": "api", "model": 2.0}
    assert service == {"service": 3}
    assert odd == {"service": "api", 'di"m': "a\nb", 'odd "name"': 0.25}
    assert records[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", 'di"m']]


def test_disabled_metrics_write_nothing() -> None:
    lines: list[str] = []
    Metrics("maaskit", "api", enabled=False, write=lines.append).record("ColdStart", 1, "Count")
    assert lines == []
