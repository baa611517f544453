"""Shared test configuration: the local-stack fixtures (moto, Lambda router) for every suite."""

from __future__ import annotations

pytest_plugins = ["maaskit.local.testing"]
