"""Unit tests are pure: no sockets, no AWS, not even moto's server."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> None:
    """pytest-socket refuses every socket a unit test tries to open."""
