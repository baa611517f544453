"""Fixed ports for tests that must name a port before a child process binds it.

``free_port()`` asks the OS for an ephemeral port and releases it; a child that binds it
seconds later races every ``bind(("127.0.0.1", 0))`` on the machine, including the stacks
that other pytest-xdist workers start at the same time. These ports come from below the
ephemeral range instead, from a block of their own per xdist worker, so nothing that binds
port 0 (here or in another worker) is handed them in between.
"""

from __future__ import annotations

import os
import random
import re
import socket
from pathlib import Path

FIXED_RANGE = (20_000, 32_000)  # below Linux's (32768) and macOS's (49152) ephemeral ranges
WORKER_BLOCK = 1_000
_LOCAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def worker_index() -> int:
    """0 outside xdist, N in worker ``gwN``."""
    match = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(match.group(1)) if match else 0


def _ephemeral() -> tuple[int, int]:
    try:
        low, high = _LOCAL_RANGE.read_text().split()
    except (OSError, ValueError):
        return (49_152, 65_535)
    return (int(low), int(high))


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` now.

    With SO_REUSEADDR, as every server sets it: connections a test made may leave the port in
    TIME_WAIT for a minute, which is not a listener left behind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def worker_port(taken: set[int] | None = None) -> int:
    """A port nothing listens on, outside the ephemeral range, in this worker's block.

    Picked at random in the block, so that two test runs on one machine rarely try the same
    one; ``taken`` are ports this test already holds for something else.
    """
    blocks = (FIXED_RANGE[1] - FIXED_RANGE[0]) // WORKER_BLOCK
    start = FIXED_RANGE[0] + (worker_index() % blocks) * WORKER_BLOCK
    low, high = _ephemeral()
    candidates = [
        p
        for p in range(start, start + WORKER_BLOCK)
        if not low <= p <= high and p not in (taken or set())
    ]
    random.SystemRandom().shuffle(candidates)
    for port in candidates:
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {start}-{start + WORKER_BLOCK - 1} outside {low}-{high}")


def worker_ports(count: int) -> list[int]:
    """``count`` distinct ports from :func:`worker_port`."""
    ports: list[int] = []
    for _ in range(count):
        ports.append(worker_port(set(ports)))
    return ports
