"""What every ``Client`` operation stands on: the target, and the HTTP transport, object
store and registry built from it on first use (boto3 is imported only then)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from maaskit.errors import InvalidRequest
from maaskit.sdk.model import Model
from maaskit.sdk.targets import Target
from maaskit.sdk.transport import HttpTransport, RetryPolicy, SigV4Signer, region_of

if TYPE_CHECKING:
    from maaskit.registry.catalog import Registry
    from maaskit.registry.store import ObjectStore


class Connection:
    """One deployment's endpoints, each made when an operation first needs it."""

    def __init__(self, target: Target | None = None, *, timeout_s: float = 30.0, retries: int = 3):
        self.target = target or Target()
        self.timeout_s = timeout_s
        self.retries = retries
        self._transport: HttpTransport | None = None
        self._store: ObjectStore | None = None
        self._registry: Registry | None = None

    @property
    def transport(self) -> HttpTransport:
        if self._transport is None:
            url = self.target.api_url
            signer = None
            if self.target.sigv4:
                region = region_of(url) or self.target.region
                if not region:
                    raise InvalidRequest("SigV4 needs a region: pass --region")
                signer = SigV4Signer(region, self.target.session.get_credentials())
            self._transport = HttpTransport(
                url,
                api_key=self.target.api_key,
                signer=signer,
                timeout_s=self.timeout_s,
                retry=RetryPolicy(retries=self.retries),
            )
        return self._transport

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            from maaskit.registry.store import ObjectStore

            self._store = ObjectStore(self.target.bucket, client=self.target.client("s3"))
        return self._store

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from maaskit.registry.catalog import Registry

            self._registry = Registry(self.store)
        return self._registry

    def model(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> Model:
        return Model(name, version=version, alias=alias, transport=self.transport)


def content_type(path: Path) -> str:
    """The Content-Type an uploaded file is stored with, by its suffix."""
    return {
        ".json": "application/json",
        ".jsonl": "application/x-ndjson",
        ".csv": "text/csv",
        ".onnx": "application/octet-stream",
    }.get(path.suffix.lower(), "application/octet-stream")
