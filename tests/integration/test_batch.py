"""The batch handler driven by S3 event notifications, against moto."""

from __future__ import annotations

import io
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import orjson
import pytest

from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore
from tests.conftest import BUCKET
from tests.integration.conftest import cold_start
from tests.support import models, text
from tests.support.events import FakeContext, load_event, s3_event

Drop = Callable[..., dict[str, Any]]


@pytest.fixture
def batch(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("MAASKIT_BATCH_SIZE", "4")  # several windows even in small files
    monkeypatch.setenv("MAASKIT_ALIAS_TTL_SECONDS", "0")  # a moved alias applies at once
    return cold_start("functions.batch.app")


@pytest.fixture
def notify(batch: ModuleType, store: ObjectStore) -> Callable[[str], dict[str, Any]]:
    """Deliver the S3 notification for an object already in the bucket; return its outcome."""

    def deliver(key: str) -> dict[str, Any]:
        info = store.head(key)
        assert info is not None
        event = s3_event("s3_batch_object_created.json", key, etag=info.etag, size=info.size)
        reply = batch.lambda_handler(event, FakeContext())
        [outcome] = reply["outcomes"]
        return outcome  # type: ignore[no-any-return]

    return deliver


@pytest.fixture
def drop(store: ObjectStore, notify: Callable[[str], dict[str, Any]]) -> Drop:
    """Put an object under batch/in/ and deliver its event, as S3 would."""

    def put(key: str, body: bytes, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        store.client.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata or {})
        return notify(key)

    return put


@pytest.fixture
def iris(registry: Registry) -> tuple[np.ndarray, np.ndarray]:
    data, weights, bias = models.linear(4, 3)
    registry.publish("iris", data)
    return weights, bias


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def csv_rows(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.strip().splitlines()]


# the three formats -------------------------------------------------------------------


def test_csv_file_is_predicted_into_the_same_format_with_a_report(
    drop: Drop, store: ObjectStore, iris: tuple
) -> None:
    # Given a CSV of measurements under batch/in/iris/ (a space in the key: S3 sends "+")
    weights, bias = iris
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]] * 3)
    body = "sepal_l,sepal_w,petal_l,petal_w\n" + "\n".join(",".join(map(str, r)) for r in x)
    key = "batch/in/iris/2026-11-28/flower measurements.csv"
    # When its event is delivered
    outcome = drop(key, body.encode())
    # Then the predictions are written beside it under batch/out/, one line per row
    assert outcome["status"] == "completed"
    out_key = "batch/out/iris/2026-11-28/flower measurements.csv"
    rows = csv_rows(store.get_bytes(out_key).decode())
    assert rows[0] == ["line", "output_0", "output_1", "output_2"]
    assert [int(r[0]) for r in rows[1:]] == list(range(2, 11))
    expected = x.astype(np.float32) @ weights + bias
    np.testing.assert_allclose(np.array(rows[1:], float)[:, 1:], expected, rtol=1e-5)
    # And the report names the source, its ETag, the model version and the row counts
    report = store.get_json(out_key + ".report.json")
    assert report["status"] == "completed"
    assert report["source"]["key"] == key
    assert report["source"]["etag"] == store.head(key).etag  # type: ignore[union-attr]
    assert report["model"] == {
        "name": "iris",
        "version": 1,
        "selected_by": "alias 'latest' (default: the model has no 'production' alias)",
    }
    assert (report["rows_in"], report["rows_out"], report["rows_failed"]) == (9, 9, 0)
    assert report["output"]["key"] == out_key
    assert report["counters"]["windows"] == 3  # batch size 4: rows went in vectorized groups
    assert {"total", "read", "parse", "model"} <= set(report["timings_ms"])


def test_jsonl_accepts_each_request_shape_and_keeps_line_numbers(
    drop: Drop, store: ObjectStore, iris: tuple
) -> None:
    weights, bias = iris
    lines = [
        b'{"input": [1, 2, 3, 4]}',
        b'{"inputs": {"input": [5, 6, 7, 8]}}',
        b"[0.5, 0.5, 0.5, 0.5]",
        b"",  # a blank line is not a row
        b'{"input": [[1, 1, 1, 1], [2, 2, 2, 2]]}',  # a batch on one line stays a batch
    ]
    outcome = drop("batch/in/iris/a.jsonl", b"\n".join(lines) + b"\n")
    assert outcome["status"] == "completed"
    assert (outcome["rows_in"], outcome["rows_out"]) == (4, 4)
    out = [orjson.loads(line) for line in store.get_bytes("batch/out/iris/a.jsonl").splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 5]

    def predict(x: list) -> Any:
        return np.array(x, np.float32) @ weights + bias

    np.testing.assert_allclose(out[0]["outputs"]["output"], predict([1, 2, 3, 4]), rtol=1e-5)
    np.testing.assert_allclose(out[2]["outputs"]["output"], predict([0.5] * 4), rtol=1e-5)
    batched = np.array(out[3]["outputs"]["output"])
    assert batched.shape == (2, 3)
    np.testing.assert_allclose(batched, predict([[1] * 4, [2] * 4]), rtol=1e-5)


def test_npy_plain_and_structured_arrays(
    drop: Drop, store: ObjectStore, registry: Registry
) -> None:
    # Given a single-input model fed a plain array, and a two-input model fed a structured one
    data, weights, bias = models.linear(4, 3)
    registry.publish("iris", data)
    registry.publish("tokens", models.two_inputs())
    x = np.random.default_rng(1).normal(size=(10, 4))
    records = np.zeros(5, dtype=[("input_ids", "<i8", (3,)), ("mask", "<f4", (3,))])
    records["input_ids"] = np.arange(15).reshape(5, 3)
    records["mask"] = [1.0, 0.0, 1.0]
    # When both files arrive
    plain = drop("batch/in/iris/x.npy", npy(x))
    structured = drop("batch/in/tokens/t.npy", npy(records))
    # Then each output is a structured array: the row index and one field per output
    assert (plain["status"], structured["status"]) == ("completed", "completed")
    out = np.load(io.BytesIO(store.get_bytes("batch/out/iris/x.npy")))
    assert out.dtype.names == ("row", "output")
    assert out["row"].tolist() == list(range(10))
    np.testing.assert_allclose(out["output"], x.astype(np.float32) @ weights + bias, rtol=1e-5)
    tokens = np.load(io.BytesIO(store.get_bytes("batch/out/tokens/t.npy")))
    assert tokens.dtype.names == ("row", "score", "ids_out")
    np.testing.assert_allclose(tokens["score"], [2.0, 8.0, 14.0, 20.0, 26.0])
    assert tokens["ids_out"].tolist() == records["input_ids"].tolist()


def test_csv_named_columns_feed_a_two_input_model(
    drop: Drop, store: ObjectStore, registry: Registry
) -> None:
    registry.publish("tokens", models.two_inputs())
    body = b"mask_0,mask_1,input_ids_0,input_ids_1\n1,1,3,4\n0,1,3,4\n"
    outcome = drop("batch/in/tokens/named.csv", body)
    assert outcome["status"] == "completed", outcome
    rows = csv_rows(store.get_bytes("batch/out/tokens/named.csv").decode())
    assert rows[0] == ["line", "score", "ids_out_0", "ids_out_1"]
    assert rows[1:] == [["2", "7.0", "3", "4"], ["3", "4.0", "3", "4"]]


# choosing the model version ------------------------------------------------------------


@pytest.fixture
def three_versions(registry: Registry) -> None:
    for seed in (1, 2, 3):
        registry.publish("iris", models.linear(4, 3, seed=seed)[0])


def _version_used(store: ObjectStore, outcome: dict[str, Any]) -> int:
    return int(store.get_json(outcome["report"])["model"]["version"])


def test_version_from_key_segment_metadata_or_default(
    drop: Drop, store: ObjectStore, registry: Registry, three_versions: None
) -> None:
    body = b"[1, 2, 3, 4]\n"
    assert _version_used(store, drop("batch/in/iris/default.jsonl", body)) == 3  # latest
    registry.set_alias("iris", "production", 2)
    assert _version_used(store, drop("batch/in/iris/prod.jsonl", body)) == 2  # production first
    assert _version_used(store, drop("batch/in/iris@1/pinned.jsonl", body)) == 1
    assert _version_used(store, drop("batch/in/iris@latest/aliased.jsonl", body)) == 3
    meta = drop("batch/in/iris/meta.jsonl", body, metadata={"model-version": "1"})
    assert _version_used(store, meta) == 1
    alias = drop("batch/in/iris/meta2.jsonl", body, metadata={"model-alias": "latest"})
    assert _version_used(store, alias) == 3
    # the output mirrors the key, reference included
    assert store.exists("batch/out/iris@1/pinned.jsonl")


def test_conflicting_version_choices_are_refused(
    drop: Drop, store: ObjectStore, three_versions: None
) -> None:
    outcome = drop("batch/in/iris@1/x.jsonl", b"[1, 2, 3, 4]\n", metadata={"model-version": "2"})
    assert outcome["status"] == "failed"
    assert "more than one model version" in outcome["reason"]
    assert not store.exists("batch/out/iris@1/x.jsonl")


# idempotency -----------------------------------------------------------------------------


def _versions_of(store: ObjectStore, key: str) -> int:
    listing = store.client.list_object_versions(Bucket=BUCKET, Prefix=key)
    return len([v for v in listing.get("Versions", []) if v["Key"] == key])


def test_redelivered_event_does_not_recompute_and_changed_source_does(
    drop: Drop, notify: Callable[[str], dict[str, Any]], store: ObjectStore, iris: tuple
) -> None:
    # Given a file already processed
    key = "batch/in/iris/again.jsonl"
    first = drop(key, b"[1, 2, 3, 4]\n[4, 3, 2, 1]\n")
    report = store.get_json(first["report"])
    # When the same event is delivered again
    again = notify(key)
    # Then nothing is recomputed or written twice
    assert again["status"] == "skipped"
    assert (again["rows_in"], again["rows_out"]) == (2, 2)
    assert store.get_json(first["report"]) == report
    assert _versions_of(store, "batch/out/iris/again.jsonl") == 1
    assert _versions_of(store, first["report"]) == 1
    # And when the source changes, it is processed again
    changed = drop(key, b"[1, 2, 3, 4]\n[4, 3, 2, 1]\n[0, 0, 0, 0]\n")
    assert changed["status"] == "completed"
    assert changed["rows_out"] == 3
    assert store.get_json(first["report"])["source"]["etag"] == store.head(key).etag  # type: ignore[union-attr]
    assert _versions_of(store, "batch/out/iris/again.jsonl") == 2


def test_a_moved_alias_reprocesses_the_same_content(
    drop: Drop, notify: Callable[[str], dict[str, Any]], store: ObjectStore, registry: Registry
) -> None:
    registry.publish("iris", models.linear(seed=1)[0])
    key = "batch/in/iris/rerun.jsonl"
    assert drop(key, b"[1, 2, 3, 4]\n")["version"] == 1
    registry.publish("iris", models.linear(seed=2)[0])  # latest moves to 2
    rerun = notify(key)
    assert (rerun["status"], rerun["version"]) == ("completed", 2)


# rows that fail, and files that fail -----------------------------------------------------


def test_one_broken_jsonl_line_is_reported_and_the_rest_predicted(
    drop: Drop, store: ObjectStore, iris: tuple
) -> None:
    body = b"[1, 2, 3, 4]\n[1, 2, 3, 4]\n{broken\n[1, 2, 3, 4]\n[1, 2, 3]\n[1, 2, 3, 4]\n"
    outcome = drop("batch/in/iris/broken.jsonl", body)
    assert outcome["status"] == "completed_with_errors"
    report = store.get_json(outcome["report"])
    assert (report["rows_in"], report["rows_out"], report["rows_failed"]) == (6, 4, 2)
    assert [f["line"] for f in report["failures"]] == [3, 5]
    assert "not valid JSON" in report["failures"][0]["reason"]
    assert "dimension 1 must be 4" in report["failures"][1]["reason"]  # shape mismatch
    out = [
        orjson.loads(x)["line"] for x in store.get_bytes("batch/out/iris/broken.jsonl").splitlines()
    ]
    assert out == [1, 2, 4, 6]


def test_a_row_onnxruntime_refuses_fails_alone(
    drop: Drop, store: ObjectStore, registry: Registry
) -> None:
    # Given a model that looks ids up in a table of 10, and one line with id 42
    data, table = models.lookup(vocab=10)
    registry.publish("lookup", data)
    lines = [[1, 2], [3, 4], [5, 42], [7, 8], [9, 0]]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    # When the file is predicted (batch size 4: the bad row's batch fails in onnxruntime)
    outcome = drop("batch/in/lookup/ids.jsonl", body)
    # Then only that line fails, with onnxruntime's reason, and its neighbours are predicted
    report = store.get_json(outcome["report"])
    assert (report["rows_in"], report["rows_out"], report["rows_failed"]) == (5, 4, 1)
    assert report["failures"][0]["line"] == 3
    assert "out of data bounds" in report["failures"][0]["reason"]
    assert report["counters"]["fallback_groups"] == 1
    out = [orjson.loads(x) for x in store.get_bytes("batch/out/lookup/ids.jsonl").splitlines()]
    assert [o["line"] for o in out] == [1, 2, 4, 5]
    np.testing.assert_allclose(out[2]["outputs"]["pooled"], table[[7, 8]].sum(0), rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", "empty", "holds no rows"),
        (b"sepal_l,sepal_w,petal_l,petal_w\n", "empty", "holds no rows"),
        (
            b"a,b,c\n1,2,3\n",
            "failed",
            "takes 4 values per row (shape ['batch', 4]); the header has 3",
        ),
        (b"a,b,c,d,e\n1,2,3,4,5\n", "failed", "the header has 5 columns"),
        (b"a,b,a,d\n1,2,3,4\n", "failed", "repeats column(s) 'a'"),
    ],
    ids=["empty", "header-only", "missing-column", "extra-column", "duplicate-column"],
)
def test_csv_files_that_cannot_be_predicted(
    drop: Drop, store: ObjectStore, iris: tuple, body: bytes, status: str, reason: str
) -> None:
    outcome = drop("batch/in/iris/bad.csv", body)
    report = store.get_json("batch/out/iris/bad.csv.report.json")
    assert (outcome["status"], report["status"]) == (status, status)
    assert reason in report["reason"]
    assert report["rows_in"] == report["rows_out"] + report["rows_failed"]
    assert not store.exists("batch/out/iris/bad.csv")  # no output pretending to be complete


def test_csv_bad_cells_fail_their_own_lines(drop: Drop, store: ObjectStore, iris: tuple) -> None:
    body = b"a,b,c,d\n1,2,3,4\n1,two,3,4\n1,2,3\n1,2,3,4,5\n1,,3,4\n5,6,7,8\n"
    outcome = drop("batch/in/iris/cells.csv", body)
    report = store.get_json(outcome["report"])
    assert (report["rows_in"], report["rows_out"], report["rows_failed"]) == (6, 2, 4)
    assert {f["line"]: f["reason"] for f in report["failures"]} == {
        3: "column 'b' is not a number: 'two'",
        4: "the line has 3 fields; the header has 4",
        5: "the line has 5 fields; the header has 4",
        6: "column 'b' is empty",
    }
    rows = csv_rows(store.get_bytes("batch/out/iris/cells.csv").decode())
    assert [r[0] for r in rows[1:]] == ["2", "7"]


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.zeros((3, 4), dtype="<U3"), "expects FP32 numbers; got strings"),
        (np.zeros((3, 4), dtype=np.complex64), "cannot feed input 'input'"),
        (np.zeros((3, 2, 2)), "must have rank 2"),
        (np.zeros((3, 5)), "dimension 1 must be 4"),
        (np.zeros(3, dtype=[("x", "<f4", (4,))]), "unknown input 'x'"),
    ],
    ids=["strings", "complex", "rank-3", "wrong-width", "wrong-field"],
)
def test_npy_of_the_wrong_dtype_or_rank_is_refused_whole(
    drop: Drop, store: ObjectStore, iris: tuple, array: np.ndarray, reason: str
) -> None:
    outcome = drop("batch/in/iris/bad.npy", npy(array))
    assert outcome["status"] == "failed"
    assert reason in outcome["reason"]
    assert not store.exists("batch/out/iris/bad.npy")


def test_truncated_npy_leaves_no_output_and_counts_every_row_failed(
    drop: Drop, store: ObjectStore, iris: tuple
) -> None:
    data = npy(np.ones((10, 4), np.float32))[:-20]
    outcome = drop("batch/in/iris/cut.npy", data)
    assert outcome["status"] == "failed"
    assert "truncated" in outcome["reason"]
    assert (outcome["rows_in"], outcome["rows_out"], outcome["rows_failed"]) == (8, 0, 8)
    assert not store.exists("batch/out/iris/cut.npy")


def test_a_failed_rerun_removes_the_older_output(
    drop: Drop, store: ObjectStore, iris: tuple
) -> None:
    assert drop("batch/in/iris/f.csv", b"a,b,c,d\n1,2,3,4\n")["status"] == "completed"
    assert store.exists("batch/out/iris/f.csv")
    assert drop("batch/in/iris/f.csv", b"a,b,c\n1,2,3\n")["status"] == "failed"
    assert not store.exists("batch/out/iris/f.csv")


def test_unknown_model_in_the_key(drop: Drop, store: ObjectStore, iris: tuple) -> None:
    outcome = drop("batch/in/irsi/x.jsonl", b"[1, 2, 3, 4]\n")
    assert outcome["status"] == "failed"
    assert outcome["reason"] == "model 'irsi' does not exist"
    assert store.get_json("batch/out/irsi/x.jsonl.report.json")["model"] is None


def test_invalid_model_name_in_the_key(drop: Drop, store: ObjectStore) -> None:
    outcome = drop("batch/in/Iris/x.jsonl", b"[1, 2, 3, 4]\n")
    assert outcome["status"] == "failed"
    assert "invalid model name 'Iris'" in outcome["reason"]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("batch/in/iris/../../models/iris/x.csv", "a '..' segment"),
        ("batch/in/iris/./x.csv", "a '.' segment"),
        ("batch/in/iris//x.csv", "an empty segment"),
        ("batch/in/iris/x#1.csv", "'#'"),
        ("batch/in/iris/a\\b.csv", "'\\\\'"),
        ("batch/in/iris/tab\there.csv", "'\\t'"),
        ("batch/in/x.csv", "no model folder"),
    ],
)
def test_keys_with_dot_dot_or_odd_characters_are_refused(
    drop: Drop, store: ObjectStore, iris: tuple, key: str, reason: str
) -> None:
    outcome = drop(key, b"a,b,c,d\n1,2,3,4\n")
    assert outcome["status"] == "failed"
    assert reason in outcome["reason"]
    # the report goes to a fixed place named by a hash, never a path made from the key
    assert outcome["report"].startswith("batch/out/_rejected/")
    assert store.get_json(outcome["report"])["source"]["key"] == key
    assert [
        k.key for k in store.list_keys("batch/out/") if not k.key.startswith("batch/out/_rejected/")
    ] == []


def test_non_batch_files_and_vanished_objects_are_ignored(
    batch: ModuleType, store: ObjectStore, iris: tuple
) -> None:
    store.put("batch/in/iris/notes.txt", b"hello")
    event = s3_event("s3_batch_object_created.json", "batch/in/iris/notes.txt")
    assert batch.lambda_handler(event, FakeContext())["outcomes"][0]["status"] == "ignored"
    gone = s3_event("s3_batch_object_created.json", "batch/in/iris/deleted.csv")
    assert batch.lambda_handler(gone, FakeContext())["outcomes"][0]["status"] == "ignored"
    assert list(store.list_keys("batch/out/")) == []


def test_the_recorded_event_fixture_decodes_its_key(
    batch: ModuleType, store: ObjectStore, iris: tuple
) -> None:
    # The fixture as S3 sends it: "+" for the space in "flower measurements.csv"
    event = load_event("s3_batch_object_created.json")
    key = "batch/in/iris/2026-11-28/flower measurements.csv"
    store.put(key, b"a,b,c,d\n1,2,3,4\n")
    [outcome] = batch.lambda_handler(event, FakeContext())["outcomes"]
    assert (outcome["key"], outcome["status"]) == (key, "completed")


def test_a_distributed_map_item_is_one_key(
    batch: ModuleType, store: ObjectStore, iris: tuple
) -> None:
    item = load_event("sfn_batch_map_item.json")
    store.put(item["key"], b"a,b,c,d\n1,2,3,4\n")
    outcome = batch.lambda_handler(item, FakeContext())
    assert outcome["status"] == "completed"
    assert outcome["report"] == "batch/out/iris/2026-11-28/flower measurements.csv.report.json"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "npy"])
def test_values_that_do_not_fit_and_non_finite_outputs_fail_their_rows(
    drop: Drop, store: ObjectStore, registry: Registry, fmt: str
) -> None:
    # Given a float32 log model, and rows that are fine, too big for float32, NaN, or whose
    # log is not finite
    registry.publish("log", models.log())
    rows = [[1.0, 2.0], [1e308, 1.0], [float("nan"), 1.0], [0.0, 1.0], [-1.0, 1.0], [3.0, 4.0]]
    if fmt == "jsonl":  # JSON has no NaN: that row is sent as a number too big instead
        body = b"".join(orjson.dumps(r if r[0] == r[0] else [-1e300, 1.0]) + b"\n" for r in rows)
    elif fmt == "csv":
        body = ("a,b\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows)).encode()
    else:
        buffer = io.BytesIO()
        np.save(buffer, np.array(rows, np.float64))
        body = buffer.getvalue()
    # When the file is predicted
    outcome = drop(f"batch/in/log/values.{fmt}", body)
    # Then only the good rows are written, and each other row fails with its reason
    report = store.get_json(outcome["report"])
    assert (report["rows_in"], report["rows_out"], report["rows_failed"]) == (6, 2, 4)
    reasons = [f["reason"] for f in report["failures"]]
    assert "outside the FP32 range" in reasons[0]
    assert ("NaN or infinity" if fmt != "jsonl" else "outside the FP32 range") in reasons[1]
    assert all("computed NaN or infinity in output 'y'" in r for r in reasons[2:])


@pytest.mark.parametrize(
    "damage", [b"\xff\xfe", b"{not json", b"[]"], ids=["bytes", "text", "list"]
)
def test_a_corrupt_report_is_not_trusted_and_the_file_is_redone(
    drop: Drop,
    notify: Callable[[str], dict[str, Any]],
    store: ObjectStore,
    iris: tuple,
    damage: bytes,
) -> None:
    # Given a processed file whose report was then overwritten with something else
    key = "batch/in/iris/redo.jsonl"
    first = drop(key, b"[1, 2, 3, 4]\n[4, 3, 2, 1]\n")
    store.put(first["report"], damage)
    # When its event is delivered again
    again = notify(key)
    # Then it is predicted again and a valid report replaces the damaged one
    assert again["status"] == "completed"
    assert store.get_json(first["report"])["rows_out"] == 2


# text models ---------------------------------------------------------------------------


@pytest.fixture
def words(registry: Registry) -> np.ndarray:
    return text.publish_words(registry)


def lines_of(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in store.get_bytes(key).splitlines()]


def test_json_lines_of_strings_and_inputs_become_embeddings_and_bad_lines_fail_alone(
    drop: Drop, store: ObjectStore, words: np.ndarray
) -> None:
    # Given lines of bare strings and {"input": ...}, with an empty text, a number and
    # bytes that are not UTF-8 among them
    body = b"\n".join(
        [
            b'"hello world"',
            b'{"input": "good movie"}',
            b'""',
            b'{"input": 7}',
            b'"caf\xe9 bad"',
            b'{"input": ["the", "a movie"]}',
        ]
    )
    # When the file lands under batch/in/words/
    outcome = drop("batch/in/words/reviews.jsonl", body)
    # Then every good line has its embedding, in order, and each bad one is in the report
    assert (outcome["rows_in"], outcome["rows_out"], outcome["rows_failed"]) == (6, 3, 3)
    out = lines_of(store, "batch/out/words/reviews.jsonl")
    assert [line["line"] for line in out] == [1, 2, 6]
    np.testing.assert_allclose(
        out[0]["outputs"]["embedding"], words[[2, 4, 5, 3]].mean(axis=0), rtol=1e-5
    )
    assert np.array(out[2]["outputs"]["embedding"]).shape == (2, 4)
    report = store.get_json("batch/out/words/reviews.jsonl.report.json")
    failures = {f["line"]: f["reason"] for f in report["failures"]}
    assert set(failures) == {3, 4, 5}
    assert "empty string" in failures[3]
    assert "strings" in failures[4]
    assert "UTF-8" in failures[5]


def test_a_csv_text_column_among_others_is_classified(
    drop: Drop, store: ObjectStore, registry: Registry
) -> None:
    text.publish_sentiment(registry)
    body = b'id,text\n1,good movie\n2,"the movie, is bad"\n3,\xff\xfe\n'
    outcome = drop("batch/in/sentiment/reviews.csv", body)
    assert (outcome["rows_in"], outcome["rows_out"], outcome["rows_failed"]) == (3, 2, 1)
    rows = store.get_bytes("batch/out/sentiment/reviews.csv").decode().splitlines()
    assert rows[0] == "line,label,probabilities_0,probabilities_1,probabilities_2"
    assert [row.split(",")[1] in text.LABELS for row in rows[1:]] == [True, True]
    report = store.get_json("batch/out/sentiment/reviews.csv.report.json")
    assert [(f["line"], f["reason"]) for f in report["failures"]] == [
        (4, "the line is not valid UTF-8")
    ]
