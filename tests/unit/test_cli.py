"""The command line: arguments, input parsing, output, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maaskit.cli import main as cli
from maaskit.errors import NotFound
from maaskit.sdk.client import TrainingRun, TrainingStatus
from tests.unit.training.helpers import spec_dict


class FakeClient:
    """Records what the CLI asked for; answers like the SDK would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def predict(self, name: str, data: Any, **options: Any) -> Any:
        self.calls.append(("predict", (name, data, options)))
        return {"model": name, "version": 1, "outputs": {"y": [[1.0]]}}

    def catalog(self) -> dict[str, Any]:
        return {
            "models": [
                {"name": "digits", "versions": [1, 2], "aliases": {"latest": 2, "production": 1}}
            ],
            "skipped": [{"name": "broken", "reason": "its alias 'latest' is not valid JSON"}],
        }

    def push_model(self, path: Path, name: str, **options: Any) -> dict[str, Any]:
        self.calls.append(("push", (path, name, options)))
        return {"name": name, "version": 1}

    def describe_model(self, name: str) -> dict[str, Any]:
        raise NotFound(f"model {name!r} does not exist")

    def start_training(self, spec: dict[str, Any]) -> TrainingRun:
        self.calls.append(("train", spec))
        return TrainingRun("run-1", "arn")

    def wait_for_training(self, run_id: str, on_progress: Any) -> TrainingStatus:
        status = TrainingStatus(run_id, "FAILED", [{"epoch": 1, "loss": 2.0}], "BadSpecError", "no")
        on_progress(status)
        return status

    def training_metrics(self, run_id: str) -> list[dict[str, Any]]:
        return [{"epoch": e, "loss": 1 / e} for e in range(1, 4)]

    # batch: a job whose report says 2 of 3 rows failed
    report: dict[str, Any] = {
        "status": "COMPLETED_WITH_ERRORS",
        "rows_in": 3,
        "rows_out": 1,
        "rows_failed": 2,
        "failures": [{"line": 2, "error": "bad"}, {"line": 3, "error": "bad"}],
        "output": {"key": "batch/out/m/rows.jsonl", "etag": "e"},
    }

    @property
    def store(self) -> Any:
        class Store:
            def uri(self, key: str) -> str:
                return f"s3://bucket/{key}"

        return Store()

    def submit_batch(self, path: Path, model: str) -> Any:
        from maaskit.sdk.client import BatchJob

        name = Path(path).name
        return BatchJob(model, f"batch/in/{model}/{name}", "e", f"batch/out/{model}/{name}",
                        (f"batch/out/{model}/{name}.report.json",), 0.0)  # fmt: skip

    def wait_for_batch(self, job: Any, *, timeout_s: float, on_wait: Any) -> dict[str, Any]:
        on_wait(0.5)
        return self.report

    def download(self, key: str, destination: Path) -> Path:
        self.calls.append(("download", (key, destination)))
        Path(destination).write_text("{}\n")
        return Path(destination)


VALID_SPEC = spec_dict(model="m")  # passes the local check `train start` makes


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    seen: list[Any] = []

    def connect(args: Any) -> FakeClient:
        seen.append(args)
        return client

    monkeypatch.setattr(cli, "_client", connect)
    client.seen = seen  # type: ignore[attr-defined]
    return client


def test_target_options_work_before_and_after_the_command() -> None:
    parser = cli.build_parser()
    before = parser.parse_args(["--api-url", "http://a/", "models", "list"])
    after = parser.parse_args(["models", "list", "--stack", "prod", "--region", "eu-west-1"])
    assert before.api_url == "http://a/"
    assert (after.stack, after.region) == ("prod", "eu-west-1")


def test_local_up_options_and_defaults() -> None:
    args = cli.build_parser().parse_args(["local", "up", "--data", "state", "--parameter", "A=1"])
    assert (args.api_port, args.aws_port) == (3000, 5000)
    assert args.data == Path("state")
    assert args.parameter == ["A=1"]


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "push", "m.onnx"],  # --name missing
        ["predict", "m"],  # --input missing
        ["predict", "m", "--input", "[1]", "--version", "1", "--alias", "a"],
        ["train"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_read_input_forms(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"input": [[1, 2]]}')
    np.save(tmp_path / "x.npy", np.arange(4).reshape(2, 2))
    assert cli.read_input("[[1, 2]]") == [[1, 2]]
    assert cli.read_input(f"@{tmp_path / 'x.json'}") == {"input": [[1, 2]]}
    assert cli.read_input(f"@{tmp_path / 'x.npy'}") == [[0, 1], [2, 3]]


def test_predict_passes_input_and_prints_the_reply(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["--local", "predict", "digits", "--input", "[[1, 2]]", "--alias", "production"]
    )

    assert code == 0
    assert fake.calls == [
        ("predict", ("digits", [[1, 2]], {"v2": False, "version": None, "alias": "production"}))
    ]
    assert json.loads(capsys.readouterr().out)["model"] == "digits"
    assert fake.seen[0].local is True  # type: ignore[attr-defined]


def test_bad_json_input_is_one_line_and_exit_2(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["predict", "digits", "--input", "[[1, 2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("maaskit: error: --input is not valid JSON")
    assert len(err.strip().splitlines()) == 1


def test_sdk_errors_are_one_line_and_exit_1(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["models", "show", "ghost"])
    assert code == 1
    assert capsys.readouterr().err == "maaskit: error: model 'ghost' does not exist\n"


def test_missing_file_is_one_line(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["train", "start", "no-such-spec.json"])
    assert code == 1
    assert capsys.readouterr().err == "maaskit: error: no such file: no-such-spec.json\n"


def test_models_list_is_a_table(fake: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "NAME    VERSIONS  ALIASES",
        "digits  1,2       latest=2 production=1",
    ]
    assert captured.err == "skipped broken: its alias 'latest' is not valid JSON\n"


def test_failed_training_run_exits_1_with_its_error(
    fake: FakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID_SPEC))

    code = cli.main(["train", "start", str(spec), "--wait"])

    captured = capsys.readouterr()
    assert code == 1
    assert fake.calls == [("train", VALID_SPEC)]
    assert "epoch 1/3" in captured.err  # the progress bar
    assert "training run run-1 FAILED: BadSpecError (no)" in captured.err


def test_train_plot_writes_a_png(fake: FakeClient, tmp_path: Path) -> None:
    output = tmp_path / "curve.png"
    assert cli.main(["train", "plot", "run-1", "-o", str(output)]) == 0
    assert output.read_bytes()[:4] == b"\x89PNG"


def test_conflicting_targets_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--local", "--stack", "prod", "models", "list"])
    assert code == 1
    assert "--local already names the endpoints" in capsys.readouterr().err


def test_predict_prints_one_line_of_json_unless_pretty(
    fake: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["predict", "digits", "--input", "[[1, 2]]"]) == 0
    compact = capsys.readouterr().out
    assert compact == '{"model":"digits","version":1,"outputs":{"y":[[1.0]]}}\n'

    assert cli.main(["predict", "digits", "--input", "[[1, 2]]", "--pretty"]) == 0
    pretty = capsys.readouterr().out
    assert len(pretty.splitlines()) > 5
    assert json.loads(pretty) == json.loads(compact)


def test_a_misspelt_spec_field_is_a_usage_error_with_a_hint_before_anything_starts(
    fake: FakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**VALID_SPEC, "epocs": 3}))

    code = cli.main(["--local", "train", "start", str(spec)])

    err = capsys.readouterr().err
    assert code == 2
    assert "unknown field(s) 'epocs'" in err
    assert "(did you mean 'epochs'?)" in err
    assert fake.calls == []  # nothing was started


def test_train_start_hint_repeats_the_target_flags(
    fake: FakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(VALID_SPEC))

    assert cli.main(["train", "start", str(spec), "--local"]) == 0
    assert "follow it with: maaskit --local train status run-1" in capsys.readouterr().out

    argv = ["--api-url", "http://h:3000/", "--aws-endpoint-url", "http://h:5000"]
    assert cli.main([*argv, "train", "start", str(spec)]) == 0
    assert (
        "follow it with: maaskit --api-url http://h:3000/ --aws-endpoint-url http://h:5000 "
        "train status run-1"
    ) in capsys.readouterr().out


def test_batch_submit_wait_summarises_and_fails_when_rows_failed(
    fake: FakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("[1]\n[2]\n[3]\n")
    output = tmp_path / "out.jsonl"

    code = cli.main(["batch", "submit", str(rows), "--model", "m", "--wait", "-o", str(output)])

    captured = capsys.readouterr()
    assert code == 1
    assert (
        "COMPLETED_WITH_ERRORS: rows 3 in, 1 out, 2 failed -> s3://bucket/batch/out/m/rows.jsonl"
        in captured.out
    )
    assert "failures" not in captured.out  # a summary, not the whole report
    assert "2 row(s) failed" in captured.err
    assert "waiting for the report of rows.jsonl" in captured.err
    assert output.exists()


def test_batch_submit_wait_exits_0_when_every_row_succeeded(
    fake: FakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.report = {**fake.report, "status": "COMPLETED", "rows_out": 3, "rows_failed": 0}
    rows = tmp_path / "rows.jsonl"
    rows.write_text("[1]\n[2]\n[3]\n")

    code = cli.main(["batch", "submit", str(rows), "--model", "m", "--wait", "-o",
                     str(tmp_path / "o.jsonl")])  # fmt: skip

    assert code == 0
    assert "rows 3 in, 3 out, 0 failed" in capsys.readouterr().out


def test_a_closed_pipe_exits_quietly(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(cli, "_models_list", lambda args: broken())
    monkeypatch.setattr(cli, "_quiet_broken_pipe", lambda: cli.EXIT_BROKEN_PIPE)
    assert cli.main(["models", "list"]) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""


def test_the_template_is_found_from_a_subfolder_or_named(tmp_path: Path) -> None:
    from maaskit.cli.foreground import find_template
    from maaskit.errors import MaaskitError

    (tmp_path / "template.yaml").write_text("Resources: {}\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_template(cwd=nested) == (tmp_path / "template.yaml").resolve()
    named = tmp_path / "other.yaml"
    named.write_text("Resources: {}\n")
    assert find_template(named) == named
    with pytest.raises(MaaskitError, match="no such file"):
        find_template(tmp_path / "missing.yaml")


def test_predict_text_with_the_model_from_the_environment(
    fake: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAASKIT_MODEL", "minilm")
    assert cli.main(["predict", "--text", "Hello, world!"]) == 0
    assert cli.main(["predict", "--model", "other", "--text", "a", "--text", "b"]) == 0
    assert [call[1][:2] for call in fake.calls] == [
        ("minilm", "Hello, world!"),
        ("other", ["a", "b"]),
    ]


def test_push_passes_text_options_for_a_bare_file(fake: FakeClient) -> None:
    argv = ["models", "push", "model.onnx", "--name", "enc", "--tokenizer", "tokenizer.json"]
    assert cli.main([*argv, "--pooling", "mean", "--normalize", "--labels", "a, b"]) == 0
    [(_, (path, name, options))] = fake.calls
    assert (path, name) == (Path("model.onnx"), "enc")
    assert options["tokenizer"] == Path("tokenizer.json")
    assert (options["pooling"], options["normalize"], options["labels"]) == (
        "mean",
        True,
        ["a", "b"],
    )


def test_train_schema_prints_the_spec_schema_with_no_aws_and_no_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no deployment to talk to at all
    def no_client(*_: Any) -> None:
        raise AssertionError("train schema needs no client")

    monkeypatch.setattr(cli, "_client", no_client)
    # When the schema is asked for
    code = cli.main(["train", "schema"])
    # Then it is printed as JSON, and it is the spec's schema
    from maaskit.training.spec import spec_schema

    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == spec_schema()
    assert printed["title"] == "maaskit training spec"
