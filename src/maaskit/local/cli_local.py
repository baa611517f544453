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
    """An event set by SIGTERM (Ctrl-C stays a KeyboardInterrupt), handlers restored after."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def start_stack(options: StackOptions) -> LocalStack:
    try:
        return LocalStack(options).start()
    except (TemplateError, DeployError) as err:
        message = str(err)
        if str(options.template) not in message:
            message = f"{options.template}: {message}"
        raise MaaskitError(message) from None


def serve_until_stopped(stack: LocalStack, stop: threading.Event) -> None:
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def up(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    options = StackOptions(
        template=args.template,
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
            api_port=args.api_port, aws_port=args.aws_port, wait=not args.no_wait, stop=stop
        )
