"""Integration fixtures: the real handler modules, cold-started inside moto."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson
import pytest

from maaskit.registry.store import ObjectStore
from tests.support.events import FakeContext, api_event


def cold_start(module_name: str) -> ModuleType:
    """Import a handler module afresh, as a new Lambda sandbox would."""
    sys.modules.pop(module_name, None)
    return importlib.import_module(module_name)


@pytest.fixture
def api(store: ObjectStore) -> ModuleType:
    return cold_start("functions.api.app")


Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def call(api: ModuleType) -> Call:
    """``call("POST", "/models/x/predict", body)`` -> (status, decoded JSON body)."""

    def invoke(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        response = api.lambda_handler(api_event(method, path, body, **kwargs), FakeContext())
        headers = response.get("headers") or {
            k: v[-1] for k, v in response.get("multiValueHeaders", {}).items()
        }
        content_type = headers.get("Content-Type", "")
        payload = orjson.loads(response["body"]) if "json" in content_type else response["body"]
        return response["statusCode"], payload

    return invoke
