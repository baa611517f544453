"""Request ids as Lambda and API Gateway give them: version-4 UUIDs, made cheaply.

``str(uuid.uuid4())`` reads the OS random source and builds a ``UUID`` object, which cost
more than the rest of an API Gateway event; ids need to be unique, not secret. So each
process draws the first 80 bits at random once (again in a forked child), and the last 48
count up from a random start: one integer formatted per id (two are made per request).
"""

from __future__ import annotations

import itertools
import os
import random

_random = random.Random()  # nosec B311  # unique ids for a local emulator, never secrets
_VARIANT = "89ab"
_LOW_BITS = (1 << 48) - 1


def _fresh() -> tuple[str, itertools.count[int]]:
    digits = f"{_random.getrandbits(80):020x}"
    variant = _VARIANT[int(digits[16], 16) & 3]
    prefix = f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-"
    return prefix, itertools.count(_random.getrandbits(48))


_prefix, _counter = _fresh()


def _reseed() -> None:
    global _prefix, _counter
    _random.seed()
    _prefix, _counter = _fresh()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    return f"{_prefix}{next(_counter) & _LOW_BITS:012x}"
