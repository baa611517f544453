"""``maaskit local up``: the local stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from maaskit.cli.foreground import (
    configure_logging,
    find_template,
    serve_until_stopped,
    start_stack,
    stop_on_signals,
)
from maaskit.errors import MaaskitError
from maaskit.local.stack import LocalStack, StackOptions


def parse_parameters(pairs: Sequence[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MaaskitError(f"--parameter {pair!r}: write it as KEY=VALUE")
        parameters[key] = value
    return parameters


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
