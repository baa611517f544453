"""The embedded AWS routes each request to its service without re-reading moto's folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import backends

from maaskit.local.aws import EmbeddedAws, _remembering
from maaskit.local.ports import free_port

BUCKET = "maaskit-embedded"


class _CountingDispatcher:
    """Stands in for moto's dispatcher: answers by host, counting how often it is asked."""

    def __init__(self, create_app: Any) -> None:
        self.create_app = create_app
        self.asked: list[str | None] = []

    def get_backend_for_host(self, host: str | None) -> Any:
        self.asked.append(host)
        return "s3" if host and host.startswith("s3.") else None


def test_each_host_is_looked_up_once_and_answered_the_same_every_time() -> None:
    dispatcher = _remembering(_CountingDispatcher)(create_app=None)

    answers = [
        dispatcher.get_backend_for_host(host)
        for host in ["127.0.0.1:5000", "s3.us-east-1.amazonaws.com"] * 3 + [None]
    ]

    assert answers == [None, "s3"] * 3 + [None]
    assert dispatcher.asked == ["127.0.0.1:5000", "s3.us-east-1.amazonaws.com", None]


@pytest.fixture
def embedded_aws() -> Iterator[EmbeddedAws]:
    aws = EmbeddedAws(port=free_port())
    aws.start()
    try:
        yield aws
    finally:
        aws.stop()


def test_requests_reach_their_services_and_moto_lists_its_modules_once_per_host(
    embedded_aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    listings: list[int] = []
    real = backends.list_of_moto_modules

    def counted() -> Any:
        listings.append(1)
        return real()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    s3 = embedded_aws.client("s3")
    stepfunctions = embedded_aws.client("stepfunctions")

    s3.create_bucket(Bucket=BUCKET)
    for i in range(20):
        s3.put_object(Bucket=BUCKET, Key=f"k{i}", Body=b"x")
        assert s3.get_object(Bucket=BUCKET, Key=f"k{i}")["Body"].read() == b"x"
        assert stepfunctions.list_state_machines()["stateMachines"] == []

    # moto alone lists its package folder on each of these 61 requests; remembered, once
    # per host it is asked about: the loopback host and at most one host per service
    assert len(listings) <= 3
