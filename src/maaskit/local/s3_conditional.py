"""S3's conditional writes are atomic; moto's are made so too.

The registry claims version numbers with ``IfNoneMatch="*"`` and moves ``latest`` with
``IfMatch``: on S3 the condition and the write are one step, so of eight racing publishers
each gets its own number. moto (5.2.5) checks the condition and then writes, and two threads
that both check before either writes both win; on the local stack, whose embedded AWS serves
requests on many threads, a version could then be published twice. This serialises moto's
conditional PUTs (and multipart completions) on one lock, which is what S3 guarantees.
Unconditional writes are left alone.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_CONDITIONS = ("If-None-Match", "If-Match")
_MARK = "_maaskit_atomic_conditions"
_lock = threading.Lock()


def _conditional(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        headers = self.headers or {}
        if any(headers.get(name) for name in _CONDITIONS):
            with _lock:
                return method(self, *args, **kwargs)
        return method(self, *args, **kwargs)

    setattr(write, _MARK, True)
    return write


def make_conditional_writes_atomic() -> None:
    """Patch moto's S3 responses once per process (idempotent)."""
    from moto.s3.responses import S3Response

    for name in ("put_object", "_key_response_post"):  # a PUT; a multipart completion
        method = getattr(S3Response, name)
        if not getattr(method, _MARK, False):
            setattr(S3Response, name, _conditional(method))
