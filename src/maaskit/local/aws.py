"""The embedded AWS: moto in server mode on loopback, with Step Functions executing.

Like moto's ``ThreadedMotoServer``, but the port is bound in the caller's thread, so a taken
port is a clear error instead of a thread that dies unseen. Starting resets moto's state (a
fresh account each run; the local stack restores saved data itself) and switches on the
execution of state machines. ``MOTO_PORT`` is set for the process while it runs, because
Step Functions Task states call Lambda through ``http://localhost:$MOTO_PORT``.

moto keeps its state per process: run one embedded AWS per process at a time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

from maaskit.local.ports import ensure_free, port_error
from maaskit.local.s3_conditional import make_conditional_writes_atomic

DUMMY_KEY = "testing"
_HOSTS_REMEMBERED = 1024  # far more than the hosts one stack's clients use


def _remembering(dispatcher: type[Any]) -> type[Any]:
    """moto's dispatcher, remembering which backend serves each ``Host``.

    moto finds a request's backend by listing its own package folder and ``stat``-ing
    every entry, on every request: about a third of the CPU of a small S3 request. The
    answer depends on the host alone.
    """

    class RememberingDispatcher(dispatcher):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            # moto calls this under its own lock: one thread at a time reads and fills the dict
            if host in self._backends:
                return self._backends[host]
            backend = super().get_backend_for_host(host)
            if len(self._backends) < _HOSTS_REMEMBERED:
                self._backends[host] = backend
            return backend

    return RememberingDispatcher


class EmbeddedAws:
    """moto's server on ``host:port``; :meth:`client` makes boto3 clients aimed at it."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 5000, region: str = "us-east-1"):
        self.host = host
        self.port = port
        self.region = region
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._previous_moto_port: str | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        make_conditional_writes_atomic()
        app = _remembering(DomainDispatcherApplication)(create_backend_app)
        ensure_free(self.host, self.port, "embedded AWS", "--aws-port")  # werkzeug would exit
        try:
            server = make_server(
                self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
            )
        except OSError as err:
            raise port_error(err, self.port, "embedded AWS", "--aws-port") from None
        except SystemExit:  # some werkzeug versions exit when the port is taken
            raise port_error(
                OSError(errno.EADDRINUSE, "in use"), self.port, "embedded AWS", "--aws-port"
            ) from None
        self._server = server
        self.port = int(server.server_port)
        self._thread = threading.Thread(
            target=server.serve_forever, name="maaskit-embedded-aws", daemon=True
        )
        self._thread.start()
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})

    def stop(self) -> None:
        if self._server is None:
            return
        with contextlib.suppress(OSError):  # the server is going away anyway
            self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": False}})
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
        if self._previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_moto_port

    def _post(self, path: str, document: Any) -> Any:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        # endpoint_url is the embedded AWS this process started (http://127.0.0.1).
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310
            return json.loads(response.read() or b"null")

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )
