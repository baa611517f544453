"""The ``maaskit`` command: argument parsing and printing around the SDK.

Every command names its deployment the same way (``--local``, ``--api-url`` with
``--aws-endpoint-url``, or ``--stack``; see :mod:`maaskit.sdk.targets`) and calls
:class:`maaskit.sdk.client.Client`. A mistake is one readable line on stderr and a non-zero exit,
never a traceback (``--debug`` shows one).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maaskit import __version__
from maaskit.errors import MaaskitError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away

Handler = Callable[[argparse.Namespace], int]


class UsageError(MaaskitError):
    """The command line itself is wrong (exit status 2)."""


# arguments ------------------------------------------------------------------------------


def _target_options() -> argparse.ArgumentParser:
    """Target options, accepted before or after the command (defaults applied in main)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("where maaskit runs")
    suppress = argparse.SUPPRESS
    group.add_argument(
        "--local", action="store_true", default=suppress, help="a local stack on default ports"
    )
    group.add_argument("--api-url", default=suppress, help="API base URL (or MAASKIT_API_URL)")
    group.add_argument(
        "--aws-endpoint-url",
        default=suppress,
        help="S3/Step Functions endpoint, e.g. a local stack's (or MAASKIT_AWS_ENDPOINT_URL)",
    )
    group.add_argument("--stack", default=suppress, help="a deployed stack: outputs name the rest")
    group.add_argument("--bucket", default=suppress, help="the bucket, if not found otherwise")
    group.add_argument("--region", default=suppress, help="AWS region (default: boto3's)")
    group.add_argument("--api-key", default=suppress, help="API key (or MAASKIT_API_KEY)")
    group.add_argument(
        "--sigv4", action="store_true", default=suppress, help="sign requests (IAM auth)"
    )
    group.add_argument("--debug", action="store_true", default=suppress, help="show tracebacks")
    return parent


_TARGET_DEFAULTS: dict[str, Any] = {
    "local": False,
    "api_url": None,
    "aws_endpoint_url": None,
    "stack": None,
    "bucket": None,
    "region": None,
    "api_key": None,
    "sigv4": False,
    "debug": False,
}


class _Commands:
    """Adds commands and command groups that all share the target options."""

    def __init__(self, parser: argparse.ArgumentParser, common: argparse.ArgumentParser):
        self.common = common
        self.root = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def group(self, name: str, text: str) -> Any:
        sub = self.root.add_parser(name, help=text, description=text)
        return sub.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(
        self, group: Any, name: str, handler: Handler, text: str, *, target: bool = True
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, help=text, description=text, parents=[self.common] if target else []
        )
        sub.set_defaults(handler=handler)
        return sub


def _add_local(commands: _Commands) -> None:
    local = commands.group("local", "the local stack")
    text = "run the local stack in the foreground"
    up = commands.add(local, "up", _local_up, text, target=False)
    up.add_argument("--api-port", type=int, default=3000, help="local API port (default 3000)")
    up.add_argument("--aws-port", type=int, default=5000, help="embedded AWS port (default 5000)")
    up.add_argument("--data", type=Path, help="keep the bucket in this folder between runs")
    up.add_argument(
        "--template",
        type=Path,
        help="the SAM template (default: the nearest template.yaml, or the package's own)",
    )
    up.add_argument("--stack-name", default="maaskit-local")
    up.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (repeatable)",
    )
    up.add_argument("-v", "--verbose", action="store_true", help="log every AWS call")


def _add_models(commands: _Commands) -> None:
    models = commands.group("models", "the model registry")
    push = commands.add(
        models,
        "push",
        _models_push,
        "publish an ONNX file, an export folder (Optimum / sentence-transformers) or a .zip / "
        ".tar.gz of one as a new version",
    )
    push.add_argument("file", type=Path, help="model.onnx, an export folder, or an archive")
    push.add_argument("--name", required=True)
    push.add_argument("--alias", action="append", default=[], help="also point this alias")
    text = push.add_argument_group("text models (default: what the folder's files say)")
    text.add_argument("--tokenizer", type=Path, help="tokenizer.json (Hugging Face tokenizers)")
    text.add_argument("--pooling", choices=("mean", "cls", "none"), help="embedding pooling")
    text.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None, help="L2-normalise"
    )
    text.add_argument("--max-length", type=int, help="tokens per text (longer texts are cut)")
    text.add_argument("--labels", help="class names in output order, comma-separated")
    commands.add(models, "list", _models_list, "models with their versions and aliases")
    show = commands.add(models, "show", _models_show, "every version's manifest and the aliases")
    show.add_argument("name")
    promote = commands.add(models, "promote", _models_promote, "point an alias at a version")
    promote.add_argument("name")
    promote.add_argument("--version", required=True, dest="model_version")
    promote.add_argument("--alias", required=True)


def _add_predict(commands: _Commands) -> None:
    predict = commands.add(commands.root, "predict", _predict, "call a model through the API")
    predict.add_argument("name", nargs="?", help="the model (default: --model or MAASKIT_MODEL)")
    predict.add_argument("--model", dest="model_name", help="the model, if not given first")
    given = predict.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", dest="input_data", help="JSON, @file.json, @file.npy or @-")
    given.add_argument(
        "--text", action="append", help="a text, for text models (repeatable: a batch)"
    )
    predict.add_argument("--v2", action="store_true", help="use the Open Inference Protocol V2")
    predict.add_argument("--pretty", action="store_true", help="indented JSON (default: one line)")
    which = predict.add_mutually_exclusive_group()
    which.add_argument("--version", dest="model_version")
    which.add_argument("--alias")


def _add_train(commands: _Commands) -> None:
    train = commands.group("train", "training runs (the training state machine)")
    start = commands.add(train, "start", _train_start, "start a training run from a spec")
    start.add_argument("spec", type=Path, help="the training spec (JSON)")
    start.add_argument("--wait", action="store_true", help="follow it with a progress bar")
    for name, handler, text in (
        ("status", _train_status, "status and latest metrics of a run"),
        ("logs", _train_logs, "the run's state transitions and errors"),
    ):
        commands.add(train, name, handler, text).add_argument("run_id", metavar="RUN")
    plot = commands.add(train, "plot", _train_plot, "loss and metric curves as a PNG")
    plot.add_argument("run_id", metavar="RUN")
    plot.add_argument("-o", "--output", type=Path, default=Path("curve.png"))
    text = "the training spec's JSON Schema (no AWS needed)"
    commands.add(train, "schema", _train_schema, text, target=False)


def _add_batch(commands: _Commands) -> None:
    batch = commands.group("batch", "batch predictions through S3")
    submit = commands.add(batch, "submit", _batch_submit, "upload a file to batch/in/{model}/")
    submit.add_argument("file", type=Path)
    submit.add_argument("--model", required=True)
    submit.add_argument("--wait", action="store_true", help="wait for the report, download")
    submit.add_argument("-o", "--output", type=Path, help="where to save the predictions")
    submit.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")


def _add_datasets(commands: _Commands) -> None:
    datasets = commands.group("datasets", "training data in the bucket")
    push = commands.add(datasets, "push", _datasets_push, "upload a dataset file")
    push.add_argument("file", type=Path)
    push.add_argument("--name", required=True)
    commands.add(datasets, "list", _datasets_list, "datasets in the bucket")


def _add_demo(commands: _Commands) -> None:
    text = "the whole service on this machine: train, serve, predict, batch"
    demo = commands.add(commands.root, "demo", _demo, text, target=False)
    demo.add_argument("--api-port", type=int, default=3000)
    demo.add_argument("--aws-port", type=int, default=5000)
    demo.add_argument("--no-wait", action="store_true", help="stop when the demo is done")
    demo.add_argument("--template", type=Path, help="the SAM template (default: as local up)")


def build_parser() -> argparse.ArgumentParser:
    common = _target_options()
    parser = argparse.ArgumentParser(
        prog="maaskit",
        description="Model-as-a-Service in your own AWS account (or on this machine).",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"maaskit {__version__}")
    commands = _Commands(parser, common)
    for add in (_add_local, _add_models, _add_predict, _add_train, _add_batch, _add_datasets):
        add(commands)
    _add_demo(commands)
    return parser


# commands -------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Any:
    from maaskit.sdk.client import Client

    return Client.connect(
        local=args.local,
        api_url=args.api_url,
        aws_endpoint_url=args.aws_endpoint_url,
        stack=args.stack,
        bucket=args.bucket,
        region=args.region,
        api_key=args.api_key,
        sigv4=args.sigv4,
    )


def _print(value: Any) -> None:
    from maaskit.cli.console import to_json

    print(value if isinstance(value, str) else to_json(value))


def _models_push(args: argparse.Namespace) -> int:
    manifest = _client(args).push_model(
        args.file,
        args.name,
        aliases=args.alias,
        tokenizer=args.tokenizer,
        pooling=args.pooling,
        normalize=args.normalize,
        max_length=args.max_length,
        labels=[x.strip() for x in args.labels.split(",")] if args.labels else None,
    )
    aliases = ", ".join(["latest", *args.alias])
    print(f"published {manifest['name']} version {manifest['version']} ({aliases})")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from maaskit.cli.console import table

    catalog = _client(args).catalog()
    models = catalog["models"]
    for skipped in catalog["skipped"]:
        print(f"skipped {skipped['name']}: {skipped['reason']}", file=sys.stderr)
    if not models:
        print("no models yet: maaskit models push FILE --name NAME")
        return 0
    rows = [
        (
            m["name"],
            ",".join(str(v) for v in m["versions"]),
            " ".join(f"{a}={v}" for a, v in sorted(m["aliases"].items())),
        )
        for m in models
    ]
    print(table(rows, ("NAME", "VERSIONS", "ALIASES")))
    return 0


def _models_show(args: argparse.Namespace) -> int:
    _print(_client(args).describe_model(args.name))
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    _client(args).promote(args.name, args.model_version, args.alias)
    print(f"{args.name}: {args.alias} -> version {args.model_version}")
    return 0


def read_input(text: str) -> Any:
    """``--input``: inline JSON, ``@file.json``, ``@file.npy`` or ``@-`` (stdin)."""
    if text.startswith("@"):
        source = text[1:]
        if source == "-":
            text = sys.stdin.read()
        elif source.endswith(".npy"):
            import numpy as np

            return np.load(source, allow_pickle=False).tolist()
        else:
            text = Path(source).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"--input is not valid JSON ({err.msg} at char {err.pos})") from None


def _model_name(args: argparse.Namespace) -> str:
    import os

    name = args.name or args.model_name or os.environ.get("MAASKIT_MODEL")
    if not name:
        raise UsageError("name the model: maaskit predict NAME ..., --model NAME or MAASKIT_MODEL")
    return str(name)


def _predict(args: argparse.Namespace) -> int:
    if args.text is not None:
        given: Any = args.text[0] if len(args.text) == 1 else args.text
    else:
        given = read_input(args.input_data)
    reply = _client(args).predict(
        _model_name(args),
        given,
        v2=args.v2,
        version=args.model_version,
        alias=args.alias,
    )
    from maaskit.cli.console import to_compact_json, to_json

    print(to_json(reply) if args.pretty else to_compact_json(reply))
    return 0


def _train_schema(args: argparse.Namespace) -> int:
    from maaskit.training.spec import spec_schema

    print(json.dumps(spec_schema(), indent=2))
    return 0


def _train_start(args: argparse.Namespace) -> int:
    from maaskit.cli.console import ProgressBar
    from maaskit.errors import InvalidRequest
    from maaskit.training.spec import parse_spec

    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UsageError(f"{args.spec} is not valid JSON ({err.msg}, line {err.lineno})") from None
    try:  # a bad spec is a usage error here, never a failed execution over there
        parse_spec(spec)
    except InvalidRequest as err:
        raise UsageError(f"{args.spec}: {err}") from None
    client = _client(args)
    run = client.start_training(spec)
    print(f"started training run {run.run_id}")
    if not args.wait:
        print(f"follow it with: {follow_up(args, 'train', 'status', run.run_id)}")
        return 0
    epochs = spec.get("epochs") if isinstance(spec.get("epochs"), int) else None
    status = client.wait_for_training(run.run_id, on_progress=ProgressBar(epochs))
    if status.status != "SUCCEEDED":
        detail = f": {status.error}" if status.error else ""
        cause = f" ({status.cause[:300]})" if status.cause else ""
        raise MaaskitError(f"training run {run.run_id} {status.status}{detail}{cause}")
    if status.output is not None:
        _print(status.output)
    return 0


# The target flags worth repeating in a follow-up command (not the API key: no secrets echoed).
_REPEATED_TARGET_FLAGS = (
    ("api_url", "--api-url"),
    ("aws_endpoint_url", "--aws-endpoint-url"),
    ("stack", "--stack"),
    ("bucket", "--bucket"),
    ("region", "--region"),
)


def follow_up(args: argparse.Namespace, *words: str) -> str:
    """The exact command to paste next, naming the same deployment as this one."""
    import shlex

    parts = ["maaskit"]
    if args.local:
        parts.append("--local")
    for attribute, flag in _REPEATED_TARGET_FLAGS:
        value = getattr(args, attribute, None)
        if value:
            parts += [flag, str(value)]
    if args.sigv4:
        parts.append("--sigv4")
    return shlex.join([*parts, *words])


def _train_status(args: argparse.Namespace) -> int:
    status = _client(args).training_status(args.run_id)
    _print(
        {
            "run_id": status.run_id,
            "status": status.status,
            "workflow": status.details,
            "epochs_reported": len(status.metrics),
            "latest": status.latest,
            "error": status.error,
            "cause": status.cause,
            "output": status.output,
        }
    )
    return 0


def _train_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    for line in client.training_logs(args.run_id):
        print(line)
    for row in client.training_metrics(args.run_id):
        print("metrics " + json.dumps(row))
    return 0


def _train_plot(args: argparse.Namespace) -> int:
    from maaskit.cli.plot import render_curves

    rows = _client(args).training_metrics(args.run_id)
    if not rows:
        raise MaaskitError(f"training run {args.run_id} has no metrics yet")
    args.output.write_bytes(render_curves(rows, title=args.run_id[:40]))
    print(f"wrote {args.output} ({len(rows)} rows of metrics)")
    return 0


def _batch_submit(args: argparse.Namespace) -> int:
    client = _client(args)
    job = client.submit_batch(args.file, args.model)
    print(f"uploaded {client.store.uri(job.input_key)}")
    if not args.wait:
        print(f"predictions will appear at {client.store.uri(job.output_key)}")
        return 0
    from maaskit.cli.console import WaitingLine, batch_summary

    waiting = WaitingLine(f"waiting for the report of {args.file.name}")
    try:
        report = client.wait_for_batch(job, timeout_s=args.timeout, on_wait=waiting)
    finally:
        waiting.close()
    print(batch_summary(report, client.store.uri(job.output_key)))
    failed = int(report.get("rows_failed") or 0)
    if report.get("output") is None:
        print(f"no predictions were written: {report.get('reason')}", file=sys.stderr)
        return EXIT_ERROR
    output = args.output or Path(args.file.stem + ".predictions" + args.file.suffix)
    client.download(job.output_key, output)
    print(f"saved predictions to {output}")
    if failed:
        print(
            f"{failed} row(s) failed; the reasons are in {client.store.uri(job.report_keys[0])}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0


def _datasets_push(args: argparse.Namespace) -> int:
    uri = _client(args).push_dataset(args.file, args.name)
    print(uri)
    return 0


def _datasets_list(args: argparse.Namespace) -> int:
    from maaskit.cli.console import table

    found = _client(args).list_datasets()
    if not found:
        print("no datasets yet: maaskit datasets push FILE --name NAME")
        return 0
    print(table([(d["uri"], d["size"]) for d in found], ("URI", "BYTES")))
    return 0


def _needs_local_extra(module: str) -> Any:
    """The local stack's modules, or a message naming the extra that brings them."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MaaskitError(
            f"the local stack needs the 'local' extra ({err.name} is missing): "
            "pip install 'maaskit[local]'"
        ) from None


def _local_up(args: argparse.Namespace) -> int:
    return int(_needs_local_extra("maaskit.cli.local").up(args))


def _demo(args: argparse.Namespace) -> int:
    return int(_needs_local_extra("maaskit.cli.demo").command(args))


# the entry point ------------------------------------------------------------------------


def _error_line(err: BaseException) -> str:
    """One line a person can act on, for the errors a user can cause."""
    name = type(err).__name__
    if isinstance(err, MaaskitError):
        return str(err)
    if isinstance(err, FileNotFoundError):
        return f"no such file: {err.filename}"
    if isinstance(err, IsADirectoryError | PermissionError):
        return f"cannot read {err.filename}: {err.strerror}"
    if name == "NoCredentialsError":
        return "no AWS credentials: configure them the usual boto3 way, or use --local"
    if name in ("EndpointConnectionError", "ConnectionClosedError"):
        return f"cannot reach AWS: {err} (is the local stack running?)"
    if name == "ClientError":
        error = getattr(err, "response", {}).get("Error", {})
        return f"AWS said {error.get('Code', 'error')}: {error.get('Message', err)}"
    if isinstance(err, OSError):
        return str(err)
    return f"{name}: {err}"


def _quiet_broken_pipe() -> int:
    """``maaskit ... | head``: the reader left; say nothing, and let exit not fail on flush."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for key, value in _TARGET_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except UsageError as err:
        print(f"maaskit: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # every failure ends as one line, unless --debug
        if args.debug:
            raise
        print(f"maaskit: error: {_error_line(err)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
