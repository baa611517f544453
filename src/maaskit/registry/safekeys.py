"""The alphabet for S3 key segments that other keys are made from.

Batch outputs mirror their input's key and uploads get markers beside them, so a key
segment like ``..``, or a character that means something to a shell, a URL or a file
system, is refused before any key is derived from it.
"""

from __future__ import annotations

import re

from maaskit.errors import InvalidName

# Letters and digits of any script, and punctuation that is safe in URLs, shells and file
# systems alike (S3's own "safe characters", plus "=" for partitions like date=2024-06-01,
# "@" for a model reference, "+", "," and the space).
_SEGMENT = re.compile(r"[\w.\-=+,@()!' ]+")
ALLOWED = "letters, digits, spaces and . - _ = + , @ ( ) ! '"


class UnsafeKey(InvalidName):
    """A key that must not be mirrored or extended (``..``, odd characters, too long)."""


def check_segments(key: str, segments: list[str]) -> None:
    """Raise ``UnsafeKey`` unless every segment is a plain, non-empty name."""
    for segment in segments:
        if segment in {"", ".", ".."}:
            what = "an empty segment ('//')" if not segment else f"a {segment!r} segment"
            raise UnsafeKey(f"the key {key!r} has {what}: rename the file")
        if not _SEGMENT.fullmatch(segment):
            odd = sorted({c for c in segment if not _SEGMENT.fullmatch(c)})
            shown = ", ".join(repr(c) for c in odd)
            raise UnsafeKey(
                f"the key {key!r} has characters these keys may not use ({shown}): use {ALLOWED}"
            )
