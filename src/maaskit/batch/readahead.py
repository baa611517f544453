"""Reading the next chunk while the current one is predicted.

S3 reads are I/O and ``session.run`` releases the GIL, so fetching chunk ``n + 1`` on a
thread while chunk ``n`` is parsed and predicted hides most of the read time. The queue is
bounded: at most ``depth`` chunks wait, so memory stays a few chunks, whatever the file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

_CHUNK, _END, _ERROR = "chunk", "end", "error"


class ReadAhead(Iterator[bytes]):
    """The same chunks, in order, fetched up to ``depth`` ahead on a thread that starts at
    once: the reading can begin while the caller still has set-up to do (a lookup, say).
    :meth:`close` (or leaving the ``with`` block) stops it, whether or not it was read."""

    def __init__(self, chunks: Iterable[bytes], depth: int = 1) -> None:
        self._slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._pump, args=(chunks,), name="maaskit-read-ahead", daemon=True
        )
        self._thread.start()

    def _offer(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self, chunks: Iterable[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._offer((_CHUNK, chunk)):
                    return
            self._offer((_END, None))
        except BaseException as err:  # handed to the consumer, raised in its thread
            self._offer((_ERROR, err))

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        kind, value = self._slots.get()
        if kind == _CHUNK:
            chunk: bytes = value
            return chunk
        self._done = True
        if kind == _END:
            raise StopIteration
        raise value

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
