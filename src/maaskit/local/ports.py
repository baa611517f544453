"""Ports on loopback: one clear message when a port is taken, and free ports for tests."""

from __future__ import annotations

import errno
import socket


class PortInUseError(OSError):
    """The port the local stack wants is already bound by another process."""


def port_error(err: OSError, port: int, what: str, option: str) -> OSError:
    """A readable error for a failed bind (``option`` is the CLI flag that picks the port)."""
    if err.errno in (errno.EADDRINUSE, errno.EACCES):
        reason = "is already in use" if err.errno == errno.EADDRINUSE else "is not allowed"
        taken = PortInUseError(
            f"port {port} for the {what} {reason}: stop whatever holds it "
            f"or choose another one with {option}"
        )
        taken.errno = err.errno
        return taken
    return err


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ensure_free(host: str, port: int, what: str, option: str) -> None:
    """Raise ``PortInUseError`` now if ``port`` cannot be bound (0 always can)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise port_error(err, port, what, option) from None
