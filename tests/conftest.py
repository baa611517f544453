"""Shared fixtures: a fake AWS account (moto), a bucket, a registry.

The local stack's fixtures (``mocked_aws``, ``lambda_router``, ``local_lambda``) come from
``maaskit.local.testing``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
from hypothesis import settings
from moto import mock_aws

from maaskit.registry.catalog import Registry
from maaskit.registry.store import ObjectStore

pytest_plugins = ["maaskit.local.testing"]

BUCKET = "maaskit-test-models"

# Property tests check what comes out, never how fast: hypothesis's default 200 ms deadline per
# example only fails them on a busy machine (a JSON Lines window took 325 ms at load 6).
settings.register_profile("maaskit", deadline=None)
settings.load_profile("maaskit")

# Set before any handler module is imported: handlers read settings at cold start.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MAASKIT_BUCKET": BUCKET,
        "POWERTOOLS_SERVICE_NAME": "maaskit",
        "POWERTOOLS_METRICS_NAMESPACE": "maaskit",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

# moto starts every mock_aws with a fresh boto3 default session, and each new botocore session
# parses the service models again (s3's alone is ~150 ms of CPU). The models are read-only
# data: one loader for the whole test process serves them parsed once. Sessions, credentials
# and clients stay per session, as they are.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


@pytest.fixture(autouse=True)
def _private_model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own /tmp model cache, so no test sees another's files."""
    monkeypatch.setenv("MAASKIT_CACHE_DIR", str(tmp_path / "model-cache"))


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield ObjectStore(BUCKET, client=client)


@pytest.fixture
def registry(store: ObjectStore) -> Registry:
    return Registry(store)
