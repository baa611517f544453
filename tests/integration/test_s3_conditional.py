"""The embedded AWS keeps S3's promise: a conditional write is one step, never check-then-write."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.s3.models import S3Backend

BUCKET = "maaskit-conditional"


@pytest.fixture
def slow_existence_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between moto's check of a condition and its write, as a busy
    machine does by chance, so that a race that can happen does happen."""
    real = S3Backend.get_object

    def slow_get_object(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        found = real(self, *args, **kwargs)
        time.sleep(0.02)
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_get_object)


def _race(write: Any, writers: int = 8) -> list[str]:
    outcomes: list[str] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        try:
            write(index)
            outcome = "won"
        except ClientError as err:
            outcome = err.response["Error"]["Code"]
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.usefixtures("slow_existence_checks")
def test_of_racing_if_none_match_writes_exactly_one_wins() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)

        # When eight writers claim the same key at once
        outcomes = _race(
            lambda i: s3.put_object(Bucket=BUCKET, Key="claim", Body=b"%d" % i, IfNoneMatch="*")
        )

        # Then one wins and seven are refused, as on S3
        assert sorted(outcomes) == ["PreconditionFailed"] * 7 + ["won"]


@pytest.mark.usefixtures("slow_existence_checks")
def test_of_racing_if_match_writes_on_one_etag_exactly_one_wins() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        etag = s3.put_object(Bucket=BUCKET, Key="alias", Body=b"1")["ETag"]

        # When eight writers compare-and-swap from the same ETag
        outcomes = _race(
            lambda i: s3.put_object(Bucket=BUCKET, Key="alias", Body=b"%d" % (i + 2), IfMatch=etag)
        )

        # Then exactly one swap happens
        assert sorted(outcomes) == ["PreconditionFailed"] * 7 + ["won"]
