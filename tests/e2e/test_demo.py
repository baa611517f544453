"""README's first quick-start command, `make demo`, runs `maaskit demo`: run it for real."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from maaskit.local.ports import free_port
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow


def test_demo_trains_serves_and_batches_on_the_local_stack() -> None:
    # Given free ports (the demo's defaults, 3000 and 5000, may be taken on this machine)
    api_port, aws_port = free_port(), free_port()
    # When the demo runs to the end without keeping the stack up
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maaskit.cli",
            "demo",
            "--no-wait",
            "--api-port",
            str(api_port),
            "--aws-port",
            str(aws_port),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    # Then every step ran for real: none was skipped, and each printed its result
    assert done.returncode == 0, output[-3000:]
    assert "skipping" not in output
    assert "SUCCEEDED" in output
    assert "serving digits production = version 1" in output
    assert f"http://127.0.0.1:{api_port}/v2/models/digits/versions/1/infer" in output
    assert '"rows_in": 20' in output
    assert '"rows_out": 20' in output
    assert "Traceback" not in output
