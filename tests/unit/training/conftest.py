"""Unit tests of the training core: pure numpy, never the network."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> None:
    """pytest-socket refuses any socket a unit test opens."""
