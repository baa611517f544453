"""Request ids as Lambda and API Gateway give them: random version-4 UUIDs, made cheaply.

``str(uuid.uuid4())`` reads the OS random source and builds a ``UUID`` object, which cost
more than the rest of an API Gateway event; ids need to be unique, not secret.
"""

from __future__ import annotations

import random

_random = random.Random()  # nosec B311  # unique ids for a local emulator, never secrets
_VARIANT = "89ab"


def new_request_id() -> str:
    digits = f"{_random.getrandbits(128):032x}"
    variant = _VARIANT[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"
