"""Reading the next chunk while the current one is predicted.

S3 reads are I/O and ``session.run`` releases the GIL, so fetching chunk ``n + 1`` on a
thread while chunk ``n`` is parsed and predicted hides most of the read time. The queue is
bounded: at most ``depth`` chunks wait, so memory stays a few chunks, whatever the file.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any

_CHUNK, _END, _ERROR = "chunk", "end", "error"


def read_ahead(chunks: Iterable[bytes], depth: int = 1) -> Generator[bytes, None, None]:
    """The same chunks, in order, fetched up to ``depth`` ahead on a background thread."""
    if depth <= 0:
        yield from chunks
        return
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for chunk in chunks:
                if not offer((_CHUNK, chunk)):
                    return
            offer((_END, None))
        except BaseException as err:  # handed to the consumer, raised in its thread
            offer((_ERROR, err))

    thread = threading.Thread(target=pump, name="maaskit-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == _CHUNK:
                yield value
            elif kind == _END:
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join(timeout=30)
