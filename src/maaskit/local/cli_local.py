"""``maaskit local up`` and ``maaskit demo``: the local stack in the foreground.

Runs until Ctrl-C or SIGTERM, then stops every server thread it started (the stack lives
in this one process: nothing is left behind).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from maaskit.errors import MaaskitError
from maaskit.local.deploy import DeployError
from maaskit.local.stack import LocalStack, StackOptions
from maaskit.local.template import TemplateError


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    quiet = logging.INFO if verbose else logging.WARNING
    for name in ("werkzeug", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(quiet)


def parse_parameters(pairs: Sequence[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MaaskitError(f"--parameter {pair!r}: write it as KEY=VALUE")
        parameters[key] = value
    return parameters


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM; Ctrl-C a KeyboardInterrupt; handlers restored after.

    SIGINT's handler is installed explicitly: a shell starts background jobs with SIGINT
    ignored, and Python then never installs its own, so Ctrl-C would do nothing.
    """
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous_term = signal.signal(signal.SIGTERM, handle)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def examples(stack: LocalStack) -> str:
    api, aws = stack.api_url, stack.aws_endpoint_url
    return "\n".join(
        [
            "Try:",
            f"  curl -s {api}models",
            f"  curl -s -X POST -H 'content-type: application/json' "
            f"-d '{{\"input\": [[...]]}}' {api}models/NAME/predict",
            f"  curl -s {api}v2/models/NAME",
            "  maaskit --local models list",
            f"  AWS_ENDPOINT_URL={aws} aws s3 ls s3://{stack.bucket}/ --recursive",
        ]
    )


TEMPLATE_NAME = "template.yaml"


def find_template(explicit: Path | None = None, *, cwd: Path | None = None) -> Path:
    """The template to run: ``--template``, else the nearest ``template.yaml`` from the
    current folder up, else the one beside the installed package's source tree."""
    if explicit is not None:
        if not explicit.is_file():
            raise MaaskitError(f"--template {explicit}: no such file")
        return explicit
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / TEMPLATE_NAME).is_file():
            return folder / TEMPLATE_NAME
    import maaskit

    beside_package = Path(maaskit.__file__).resolve().parents[2] / TEMPLATE_NAME
    if beside_package.is_file():
        return beside_package
    raise MaaskitError(
        f"no {TEMPLATE_NAME} here or in any folder above {here}: run from a maaskit "
        "checkout, or name one with --template PATH"
    )


def start_stack(options: StackOptions) -> LocalStack:
    try:
        return LocalStack(options).start()
    except (TemplateError, DeployError) as err:
        message = str(err)
        if str(options.template) not in message:
            message = f"{options.template}: {message}"
        raise MaaskitError(message) from None


def serve_until_stopped(stack: LocalStack, stop: threading.Event) -> None:
    try:  # from the prompt on: a Ctrl-C that lands while it is printed is a clean stop too
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def up(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    options = StackOptions(
        template=find_template(args.template),
        api_port=args.api_port,
        aws_port=args.aws_port,
        data_dir=args.data,
        stack_name=args.stack_name,
        parameters=parse_parameters(args.parameter),
    )
    with stop_on_signals() as stop:
        stack = start_stack(options)
        try:
            print(stack.describe())
            print(examples(stack))
            serve_until_stopped(stack, stop)
        finally:
            print("stopping the local stack...", flush=True)
            stack.stop()
    print("stopped.")
    return 0


def demo(args: argparse.Namespace) -> int:
    from maaskit.local.demo import run_demo

    configure_logging(False)
    with stop_on_signals() as stop:
        return run_demo(
            api_port=args.api_port,
            aws_port=args.aws_port,
            wait=not args.no_wait,
            stop=stop,
            template=find_template(getattr(args, "template", None)),
        )
