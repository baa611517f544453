"""Embedding a text dataset with a frozen encoder, in batches that survive a retry.

Batch ``i`` always holds rows ``[i * batch_size, (i + 1) * batch_size)`` and its
embeddings are saved under a name given by ``i`` alone, so a killed or retried invocation
skips the batches already saved and rewrites nothing else: a dataset embedded over several
invocations ends with the same matrix as one embedded in a single go. The encoder is a
callable (texts in, ``[n, dim]`` out), so the loop knows nothing of ONNX or S3.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from maaskit.errors import IntegrityError

Embeddings = npt.NDArray[np.float32]
Embed = Callable[[Sequence[str]], npt.NDArray[np.floating]]
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class EmbeddingPlan:
    rows: int
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def batches(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def rows_of(self, batch: int) -> slice:
        start = batch * self.batch_size
        return slice(start, min(start + self.batch_size, self.rows))


@dataclass(frozen=True)
class EmbeddingProgress:
    next_batch: int
    embedded: int  # batches computed by this call
    skipped: int  # batches found already saved (a retried invocation)


def _checked(values: npt.NDArray[np.floating], rows: int, batch: int) -> Embeddings:
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[0] != rows:
        raise IntegrityError(
            f"the encoder returned shape {array.shape} for batch {batch} of {rows} text(s); "
            "expected [texts, dim]"
        )
    if not np.isfinite(array).all():
        raise IntegrityError(f"the encoder returned non-finite embeddings for batch {batch}")
    return np.ascontiguousarray(array, dtype=np.float32)


def embed_batches(
    texts: Sequence[str],
    plan: EmbeddingPlan,
    start: int,
    embed: Embed,
    *,
    saved: Callable[[int], bool],
    save: Callable[[int, Embeddings], None],
    time_budget: float | None = None,
    max_batches: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EmbeddingProgress:
    """Embed and save batches from ``start`` until all are done, ``max_batches`` were
    computed, or the next one might not finish within ``time_budget`` seconds (judged by
    twice the slowest batch so far). At least one batch is computed per call, so a loop of
    invocations always makes progress."""
    if len(texts) != plan.rows:
        raise IntegrityError(f"the plan is for {plan.rows} texts, got {len(texts)}")
    batch = start
    embedded = skipped = 0
    began = clock()
    slowest = 0.0
    while batch < plan.batches:
        if saved(batch):
            skipped += 1
            batch += 1
            continue
        if embedded and max_batches is not None and embedded >= max_batches:
            break
        if embedded and time_budget is not None and clock() - began + 2 * slowest > time_budget:
            break
        tick = clock()
        rows = plan.rows_of(batch)
        chunk = list(texts[rows])
        save(batch, _checked(embed(chunk), len(chunk), batch))
        slowest = max(slowest, clock() - tick)
        embedded += 1
        batch += 1
    return EmbeddingProgress(next_batch=batch, embedded=embedded, skipped=skipped)


def assemble(plan: EmbeddingPlan, load: Callable[[int], Embeddings]) -> Embeddings:
    """Every batch's embeddings in row order, as one ``[rows, dim]`` float32 matrix."""
    parts = [load(batch) for batch in range(plan.batches)]
    dims = {part.shape[1] for part in parts}
    if len(dims) != 1:
        raise IntegrityError(f"the saved embedding batches disagree on their width: {dims}")
    for batch, part in enumerate(parts):
        expected = plan.rows_of(batch)
        if part.shape[0] != expected.stop - expected.start:
            raise IntegrityError(f"saved embedding batch {batch} has {part.shape[0]} rows")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def to_bytes(embeddings: Embeddings) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, embeddings, allow_pickle=False)
    return buffer.getvalue()


def from_bytes(data: bytes) -> Embeddings:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # truncated or foreign file
        raise IntegrityError(f"an embedding batch cannot be read: {err}") from None
    return np.ascontiguousarray(array, dtype=np.float32)
