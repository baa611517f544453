"""End-to-end fixtures: real local stacks on free loopback ports, driven over HTTP.

moto keeps its state per process, so one stack runs at a time: each module starts its own
and stops it when the module is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maaskit.local.stack import LocalStack, StackOptions
from maaskit.sdk.client import Client
from maaskit.sdk.targets import Target, TargetOptions

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TEMPLATE = ROOT / "tests" / "fixtures" / "sample_stack" / "template.yaml"
MAASKIT_TEMPLATE = ROOT / "template.yaml"


def start_stack(template: Path, **options: object) -> LocalStack:
    """A stack on ports the OS picks (nothing else on the machine is disturbed)."""
    return LocalStack(
        StackOptions(template=template, api_port=0, aws_port=0, **options)  # type: ignore[arg-type]
    ).start()


def client_for(stack: LocalStack) -> Client:
    """A client that knows only the two URLs, as a user of a running stack would."""
    return Client(
        Target(
            TargetOptions(api_url=stack.api_url, aws_endpoint_url=stack.aws_endpoint_url, env={})
        )
    )


@pytest.fixture(scope="module")
def sample_stack() -> Iterator[LocalStack]:
    stack = start_stack(SAMPLE_TEMPLATE)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def maaskit_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    cache = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAASKIT_CACHE_DIR", str(cache))
        stack = start_stack(MAASKIT_TEMPLATE, parameters={"LogLevel": "WARNING"})
        try:
            yield stack
        finally:
            stack.stop()
