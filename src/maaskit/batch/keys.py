"""Where a batch file lives, where its predictions and report go, and which model it names.

``batch/in/{model}/{path}`` is mirrored to ``batch/out/{model}/{path}`` (same format) with
``{path}.report.json`` beside it. The model segment may pin a version or an alias with
``@``: ``batch/in/iris@3/...`` or ``batch/in/iris@production/...`` (``@`` is outside the
model-name alphabet, so the split is unambiguous). Keys are checked before anything is
written from them: a ``..`` segment or a character outside a conservative alphabet would be
copied into the output key, so such a file is refused and its report goes to a fixed place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from maaskit.errors import InvalidName
from maaskit.registry.safekeys import UnsafeKey, check_segments

IN_PREFIX = "batch/in/"
OUT_PREFIX = "batch/out/"
REJECTED_PREFIX = OUT_PREFIX + "_rejected/"  # "_" never starts a model name
RUNS_PREFIX = "batch/runs/"
REPORT_SUFFIX = ".report.json"
FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".npy": "npy"}
MAX_KEY_BYTES = 1024  # S3's limit, which the report key (the longest we derive) must fit


class UnsupportedFormat(InvalidName):
    """A key under ``batch/in/`` whose suffix is not a batch format: not ours to process."""


@dataclass(frozen=True)
class BatchKey:
    """A parsed input key: which model, which reference, and which file."""

    source: str
    model: str
    ref: str | None  # from the key segment: a version number or an alias
    path: str
    format: str

    @property
    def model_segment(self) -> str:
        return self.source[len(IN_PREFIX) :].split("/", 1)[0]

    @property
    def output_key(self) -> str:
        return f"{OUT_PREFIX}{self.model_segment}/{self.path}"

    @property
    def report_key(self) -> str:
        return self.output_key + REPORT_SUFFIX


def format_of(key: str) -> str | None:
    """The batch format a key's suffix names, or ``None``."""
    lowered = key.lower()
    return next((fmt for suffix, fmt in FORMATS.items() if lowered.endswith(suffix)), None)


def rejected_report_key(key: str) -> str:
    """Where the report for an unsafe key goes: a name derived from its hash, never from it."""
    return f"{REJECTED_PREFIX}{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}{REPORT_SUFFIX}"


def parse_batch_key(key: str) -> BatchKey:
    """Split and check a decoded input key (S3 events URL-encode keys: decode them first).

    Raises ``UnsupportedFormat`` for files that are not batch inputs (ignored, not errors)
    and ``UnsafeKey`` for keys that must not be mirrored.
    """
    if not key.startswith(IN_PREFIX):
        raise UnsupportedFormat(f"{key!r} is not under {IN_PREFIX}")
    fmt = format_of(key)
    if fmt is None or key.endswith("/"):
        raise UnsupportedFormat(
            f"{key!r} is not a batch file: use one of {', '.join(sorted(FORMATS))}"
        )
    rest = key[len(IN_PREFIX) :]
    segments = rest.split("/")
    if len(segments) < 2:
        raise UnsafeKey(f"the key {key!r} has no model folder: use {IN_PREFIX}{{model}}/{{file}}")
    check_segments(key, segments)
    report_bytes = len(f"{OUT_PREFIX}{rest}{REPORT_SUFFIX}".encode())
    if report_bytes > MAX_KEY_BYTES:
        raise UnsafeKey(f"the key {key[:80]!r}... is too long for its report key: shorten it")
    model, _, ref = segments[0].partition("@")
    return BatchKey(
        source=key,
        model=model,
        ref=ref or None,
        path="/".join(segments[1:]),
        format=fmt,
    )
