"""One batch file in S3 to its predictions and report: the core that every trigger calls.

An S3 event, a Distributed Map item and a test all call :meth:`BatchService.process` with
a decoded key. It reads the object as a stream, picks the model version, skips work
already done for this source ETag and version, runs the streaming job into a multipart
upload on the output key (visible only when complete), and always leaves a report, except
for keys that are not batch files at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import IO, Any

from maaskit.batch import formats
from maaskit.batch.formats.npy import row_aligned
from maaskit.batch.job import EMPTY, FAILED, JobConfig, JobResult, run_job
from maaskit.batch.keys import (
    BatchKey,
    UnsupportedFormat,
    format_of,
    parse_batch_key,
    rejected_report_key,
)
from maaskit.batch.readahead import ReadAhead
from maaskit.batch.report import ModelUsed, already_done, build_report, now, read_report
from maaskit.batch.selection import ModelPicker, choose_model
from maaskit.batch.texts import predictor_for
from maaskit.errors import MaaskitError, NotFound, ObjectChanged, StoreUnavailable
from maaskit.registry.safekeys import UnsafeKey
from maaskit.registry.store import BULK_CHECKSUM, MultipartWriter, ObjectInfo, ObjectStore
from maaskit.serving.runtime import Runtime
from maaskit.settings import Settings

SKIPPED = "skipped"  # already processed: same source ETag, same model version
IGNORED = "ignored"  # not a batch file, or gone before we could read it
SUPERSEDED = "superseded"  # the source changed while we read it: its own event redoes it
# .npy rows need no parsing, so the model can start on them as soon as they arrive: read in
# pieces this size (with as many read ahead as one chunk holds, the same bytes in flight,
# and cut so that rows do not straddle them), the model starts after the first piece
# instead of the first chunk, and what is left to run after the last byte arrives is one
# piece's rows, not one chunk's. Not smaller: each piece is at least one session.run and
# its hand-offs, and 1 MiB pieces cost ~5% more CPU a file than 2 MiB ones.
NPY_READ_BYTES = 2 * 1024 * 1024


class _AlreadyDone(Exception):
    """The previous report already covers this content and model version: nothing to write."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__("already processed")
        self.report = report


class SourceChanged(MaaskitError):
    """The source object was replaced while it was being read."""

    http_status = 409


@dataclass(frozen=True)
class BatchOutcome:
    """What one file came to: small enough for a Step Functions state."""

    key: str
    status: str
    report: str | None = None
    rows_in: int = 0
    rows_out: int = 0
    rows_failed: int = 0
    model: str | None = None
    version: int | None = None
    reason: str | None = None

    @classmethod
    def from_report(
        cls,
        key: str,
        status: str,
        report_key: str,
        document: Mapping[str, Any],
        *,
        model: str | None,
        version: int | None,
        reason: str | None,
    ) -> BatchOutcome:
        """The outcome a report states, with its row counts."""
        return cls(
            key,
            status,
            report=report_key,
            rows_in=document["rows_in"],
            rows_out=document["rows_out"],
            rows_failed=document["rows_failed"],
            model=model,
            version=version,
            reason=reason,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chunks(body: IO[bytes], size: int) -> Any:
    return iter(lambda: body.read(size), b"")


def _then(chunks: Iterable[bytes], at_end: Callable[[], None]) -> Iterator[bytes]:
    """The same chunks; ``at_end`` runs once the last one has been read (not on an early stop)."""
    yield from chunks
    at_end()


class BatchService:
    def __init__(
        self,
        store: ObjectStore,
        runtime: Runtime,
        *,
        config: JobConfig | None = None,
        chunk_bytes: int = 8 * 1024 * 1024,
        part_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.models = ModelPicker(runtime)
        self.config = config or JobConfig()
        self.chunk_bytes = chunk_bytes
        self.part_bytes = part_bytes
        # two: the source's pre-commit HEAD never waits behind a previous report still coming
        self._lookups = ThreadPoolExecutor(max_workers=2, thread_name_prefix="maaskit-lookup")

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: ObjectStore | None = None,
        *,
        runtime: Runtime | None = None,
    ) -> BatchService:
        """The service as the settings say; over ``runtime``'s store when one is given."""
        if runtime is None:
            # a job alternates parsing (Python) and session.run: no spinning between runs
            runtime = Runtime.from_settings(settings, store=store, spin_wait=False)
        return cls(
            runtime.registry.store,
            runtime,
            config=JobConfig(
                batch_size=settings.batch_size,
                max_line_bytes=settings.max_request_bytes,
                max_listed_failures=settings.batch_max_listed_failures,
            ),
            chunk_bytes=settings.batch_chunk_bytes,
            part_bytes=settings.batch_part_bytes,
        )

    def process(self, key: str) -> BatchOutcome:
        """Predict the batch file at ``key`` (already URL-decoded)."""
        started_at, clock = now(), time.perf_counter()
        try:
            batch_key = parse_batch_key(key)
        except UnsupportedFormat as err:
            return BatchOutcome(key, IGNORED, reason=err.message)
        except UnsafeKey as err:
            report_key = rejected_report_key(key)
            self.store.put_json(
                report_key,
                build_report(
                    bucket=self.store.bucket,
                    source_key=key,
                    fmt=format_of(key),
                    info=None,
                    model=None,
                    status=FAILED,
                    reason=err.message,
                    result=None,
                    output_key=None,
                    output_etag=None,
                    writer_stats=None,
                    timings_ms={"total": (time.perf_counter() - clock) * 1000},
                    started_at=started_at,
                ),
            )
            return BatchOutcome(key, FAILED, report=report_key, reason=err.message)
        try:
            body, info = self.store.open(key)
        except NotFound:
            return BatchOutcome(key, IGNORED, reason="the object no longer exists")
        # The previous report (the idempotency record) is fetched while the source's body
        # streams in, not while S3 prepares the source's reply: asked at the same time, the
        # two slow each other's first byte, and the source's is on every file's path.
        previous = self._lookups.submit(read_report, self.store, batch_key.report_key)
        with closing(body):
            return self._process(
                batch_key, body, info, previous, started_at=started_at, clock=clock
            )

    def _process(
        self,
        key: BatchKey,
        body: IO[bytes],
        info: ObjectInfo,
        previous_report: Future[dict[str, Any] | None],
        *,
        started_at: str,
        clock: float,
    ) -> BatchOutcome:
        def report(
            status: str,
            *,
            reason: str | None = None,
            model: ModelUsed | None = None,
            result: JobResult | None = None,
            sink: MultipartWriter | None = None,
            load_ms: float = 0.0,
        ) -> BatchOutcome:
            output_etag = result.output_etag if result else None
            if output_etag is None:
                self._remove_stale_output(key)
            writer_stats = (
                {
                    "parts_uploaded": sink.parts_uploaded,
                    "peak_buffered_bytes": sink.peak_buffered_bytes,
                }
                if sink
                else None
            )
            document = build_report(
                bucket=self.store.bucket,
                source_key=key.source,
                fmt=key.format,
                info=info,
                model=model,
                status=status,
                reason=reason,
                result=result,
                output_key=key.output_key,
                output_etag=output_etag,
                writer_stats=writer_stats,
                timings_ms={"total": (time.perf_counter() - clock) * 1000, "model_load": load_ms},
                started_at=started_at,
            )
            self.store.put_json(key.report_key, document)
            return BatchOutcome.from_report(
                key.source,
                status,
                key.report_key,
                document,
                model=model.name if model else key.model,
                version=model.version if model else None,
                reason=reason,
            )

        # The source check runs once all of it has been read, while its last rows are still
        # being predicted, and the answer is awaited just before the output is committed: the
        # check still follows the last byte read and precedes the commit, and its round trip
        # no longer adds to every file's time.
        heads: list[Future[ObjectInfo | None]] = []

        def read_to_the_end() -> None:
            heads.append(self._lookups.submit(self.store.head, key.source))

        def source_unchanged() -> None:
            current = heads[0].result() if heads else self.store.head(key.source)
            if current is None or current.etag != info.etag:
                raise SourceChanged(f"{key.source} changed while it was read")

        read_bytes = self.chunk_bytes
        if key.format == "npy":
            read_bytes = min(read_bytes, NPY_READ_BYTES)
            pieces = row_aligned(body.read, read_bytes)
        else:
            pieces = _chunks(body, read_bytes)
        # The reading starts now, while the model is picked and the previous report awaited
        # (up to a chunk's bytes: all of it is dropped if the file turns out to be done).
        with ReadAhead(
            _then(pieces, read_to_the_end), depth=max(1, self.chunk_bytes // read_bytes)
        ) as ahead:
            loading = time.perf_counter()
            try:
                choice = choose_model(key, info.metadata)
                model, selected_by = self.models.load(choice)
            except StoreUnavailable:
                raise  # S3 failing is not the file's fault: Lambda retries the event, no report
            except MaaskitError as err:  # unknown model, bad reference, a model that will not load
                return report(FAILED, reason=err.message)
            load_ms = (time.perf_counter() - loading) * 1000
            used = ModelUsed(model.name, model.version, selected_by)

            # The previous report is checked as soon as it has arrived, between two pieces,
            # without holding the model back until then (S3 answers a small GET slowly while
            # it streams the source), and at the latest before anything is written: a file
            # already done stops within a piece or two, and nothing of it is committed.
            def not_done_before(wait: bool) -> None:
                if wait or previous_report.done():
                    previous = previous_report.result()
                    if already_done(previous, info.etag, model.version):
                        assert previous is not None  # nosec B101  # narrows the type; already_done is False without a report
                        raise _AlreadyDone(previous)

            def checked(pieces: Iterable[bytes]) -> Iterator[bytes]:
                for piece in pieces:
                    not_done_before(wait=False)
                    yield piece

            def before_commit() -> None:
                not_done_before(wait=True)
                source_unchanged()

            sink = self.store.writer(
                key.output_key,
                content_type=formats.content_type(key.format),
                part_bytes=self.part_bytes,
                hold_first_part=formats.holds_first_part(key.format),
                background=True,  # part n uploads while part n + 1 is predicted
                checksum=BULK_CHECKSUM,
            )
            try:
                result = run_job(
                    predictor_for(model),
                    key.format,
                    checked(ahead),  # piece n + 1 (and more, up to a chunk) arrives meanwhile
                    sink,
                    self.config,
                    before_commit=before_commit,
                )
                not_done_before(wait=True)  # a failed or empty file is reported only if not done
            except (SourceChanged, ObjectChanged) as err:  # the new content has its own event
                return BatchOutcome(key.source, SUPERSEDED, reason=err.message)
            except _AlreadyDone as done:
                return BatchOutcome.from_report(
                    key.source,
                    SKIPPED,
                    key.report_key,
                    done.report,
                    model=model.name,
                    version=model.version,
                    reason=f"already processed: {done.report['status']} for this ETag and version",
                )
        return report(
            result.status,
            reason=result.reason,
            model=used,
            result=result,
            sink=sink,
            load_ms=load_ms,
        )

    def _remove_stale_output(self, key: BatchKey) -> None:
        """A file that failed or was empty must not leave an older run's output looking current."""
        if self.store.head(key.output_key) is not None:
            self.store.delete(key.output_key)


__all__ = ["EMPTY", "FAILED", "IGNORED", "SKIPPED", "SUPERSEDED", "BatchOutcome", "BatchService"]
