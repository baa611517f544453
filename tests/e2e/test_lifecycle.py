"""Starting and stopping: templates picked up as they are, data kept, ports, signals."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import requests

from maaskit.local.ports import PortInUseError
from maaskit.local.stack import LocalStack, StackOptions
from tests.e2e.conftest import ROOT, SAMPLE_TEMPLATE, start_stack
from tests.support.ports import port_is_free, worker_ports


def test_a_route_added_to_a_copy_of_the_template_is_served(tmp_path: Path) -> None:
    # Given a copy of the sample project with one more Api event on the echo function
    project = tmp_path / "project"
    shutil.copytree(SAMPLE_TEMPLATE.parent, project)
    template = project / "template.yaml"
    template.write_text(
        template.read_text().replace(
            "        Upload:\n",
            "        Health:\n          Type: Api\n          Properties:\n"
            "            RestApiId: !Ref EchoApi\n            Path: /health/{check}\n"
            "            Method: get\n        Upload:\n",
        )
    )

    # When the local stack starts on it
    stack = start_stack(template)
    try:
        reply = requests.get(stack.api_url + "health/db", timeout=10)
    finally:
        stack.stop()

    # Then the new route is served, by the function the template names
    assert reply.status_code == 200
    assert reply.json()["resourcePath"] == "/health/{check}"
    assert reply.json()["pathParameters"] == {"check": "db"}


def test_bucket_survives_a_restart_with_a_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"

    first = start_stack(SAMPLE_TEMPLATE, data_dir=data)
    try:
        s3 = boto3.client("s3", endpoint_url=first.aws_endpoint_url, region_name="us-east-1")
        s3.put_object(Bucket=first.bucket, Key="models/keep/me.txt", Body=b"kept")
        s3.put_object(Bucket=first.bucket, Key="in/once.txt", Body=b"once")
    finally:
        first.stop()

    second = start_stack(SAMPLE_TEMPLATE, data_dir=data)
    try:
        s3 = boto3.client("s3", endpoint_url=second.aws_endpoint_url, region_name="us-east-1")
        kept = s3.get_object(Bucket=second.bucket, Key="models/keep/me.txt")["Body"].read()
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=second.bucket)["Contents"]}
        failures = list(second.router.failures)
    finally:
        second.stop()

    assert kept == b"kept"
    ours = ("maaskit-local-api", "maaskit-embedded-aws", "maaskit-local-saver")
    assert not [t.name for t in threading.enumerate() if t.name in ours]  # all stopped
    # restored before notifications were wired: the S3 function did not run again
    assert keys == {"models/keep/me.txt", "in/once.txt", "out/once.txt"}
    assert failures == []


def test_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        stack = LocalStack(StackOptions(template=SAMPLE_TEMPLATE, api_port=taken, aws_port=0))
        with pytest.raises(
            PortInUseError, match=f"port {taken} for the local API is already in use"
        ):
            stack.start()
    # and the half-started stack cleaned up after itself: another one can start
    start_stack(SAMPLE_TEMPLATE).stop()


def _ignore_sigint() -> None:
    """As a shell starts a background job (``cmd &``): SIGINT ignored from the start."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop_signal", "started_ignoring_sigint"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    ids=["sigterm", "ctrl-c", "ctrl-c-in-a-background-job"],
)
def test_local_up_runs_until_a_signal_and_leaves_nothing(
    stop_signal: int, started_ignoring_sigint: bool
) -> None:
    api_port, aws_port = worker_ports(2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "maaskit.cli.main", "local", "up",
            "--template", str(SAMPLE_TEMPLATE),
            "--api-port", str(api_port), "--aws-port", str(aws_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        preexec_fn=_ignore_sigint if started_ignoring_sigint else None,  # noqa: PLW1509
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        banner = "".join(lines)
        assert f"http://127.0.0.1:{api_port}/" in banner
        assert "no API key or signature needed locally" in banner
        assert requests.get(f"http://127.0.0.1:{api_port}/items/1", timeout=10).status_code == 200

        process.send_signal(stop_signal)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "stopped." in out
    assert port_is_free(api_port)
    assert port_is_free(aws_port)
