"""The local API's HTTP server over real loopback sockets."""

from __future__ import annotations

import contextlib
import socket

from maaskit.local.api_server import listen

BURST = 32


def test_a_burst_of_connections_waits_for_the_accept_loop_instead_of_being_refused() -> None:
    # Given the server bound and listening, its accept loop busy (not accepting yet): with
    # socketserver's backlog of 5, the kernel dropped the rest and clients saw resets
    server = listen("127.0.0.1", 0)
    port = int(server.getsockname()[1])
    with contextlib.ExitStack() as opened:
        opened.callback(server.close)
        # When 32 clients connect at once
        for _ in range(BURST):
            connection = socket.create_connection(("127.0.0.1", port), timeout=0.5)
            opened.callback(connection.close)
        # Then every handshake completed at once: each waits in the queue to be accepted
