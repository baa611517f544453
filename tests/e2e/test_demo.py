"""README's first quick-start command, `make demo`, runs `maaskit demo`: run it for real,
then paste README's text examples against the stack it leaves running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.e2e.conftest import ROOT
from tests.support.ports import worker_ports

pytestmark = pytest.mark.slow

README_API = "http://127.0.0.1:3000/"


def readme_examples() -> tuple[str, str]:
    """The curl command and the Python block README shows for the text model."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [curl] = [line for line in readme.splitlines() if line.startswith("curl") and "minilm" in line]
    [python] = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.S)
        if 'Model("minilm")' in block
    ]
    return curl, python


def run_curl_line(curl: str, api: str) -> requests.Response:
    """README's curl line, sent as curl would send it (body and content type exactly)."""
    [body] = re.findall(r"-d '([^']*)'", curl)
    [url] = re.findall(r"http://\S+", curl)
    return requests.post(
        url.replace(README_API, api),
        data=body.encode(),
        headers={"content-type": "application/json"},
        timeout=60,
    )


def test_demo_trains_serves_batches_and_serves_text_as_readme_shows(tmp_path: Path) -> None:
    # Given free ports (the demo's defaults, 3000 and 5000, may be taken on this machine)
    api_port, aws_port = worker_ports(2)
    api = f"http://127.0.0.1:{api_port}/"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    # When the demo runs and leaves its stack up
    demo = subprocess.Popen(
        [sys.executable, "-m", "maaskit.cli.main", "demo", "--api-port", str(api_port),
         "--aws-port", str(aws_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while not ready.wait(1) and demo.poll() is None and time.monotonic() < deadline:
            pass
        output = "".join(lines)
        assert ready.is_set(), output[-3000:]
        # Then every step ran for real: none was skipped, and each printed its result
        assert "skipping" not in output
        assert "SUCCEEDED" in output
        assert "serving digits production = version 1" in output
        assert f"{api}v2/models/digits/versions/1/infer" in output
        assert '"rows_in": 20' in output
        assert '"rows_out": 20' in output
        assert "published minilm version 1" in output
        assert "embedding of 384 numbers" in output
        assert "Traceback" not in output
        # And README's two text examples, pasted as they are, answer an embedding
        curl, python = readme_examples()
        reply = run_curl_line(curl, api)
        assert reply.status_code == 200, reply.text
        [embedding] = reply.json()["outputs"]["embedding"]
        assert len(embedding) == 384
        assert abs(np.linalg.norm(embedding) - 1.0) < 1e-4
        script = tmp_path / "example.py"
        script.write_text(python)
        done = subprocess.run(
            [sys.executable, str(script)],
            env={**env, "MAASKIT_API_URL": api},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        printed = np.array(
            [float(x) for x in re.findall(r"[-+]?\d+\.\d*(?:e[-+]?\d+)?", done.stdout)], np.float32
        )
        np.testing.assert_allclose(printed[:3], embedding[:3], atol=1e-6)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
