"""Random (version 4) UUIDs for new events, built without ``UUID.__init__``.

``uuid.uuid4()`` passes 16 random bytes through ``UUID.__init__``, whose argument checks
cost more than the randomness; here the same value (the same random bits, version 4, the
RFC 4122 variant) is set on a new ``UUID`` as ``__init__`` sets it."""

from __future__ import annotations

import os
from uuid import UUID, SafeUUID

_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)  # all but variant and version
_MARK = (0x8000 << 48) | (4 << 76)  # the RFC 4122 variant, version 4
_new = object.__new__
_set = object.__setattr__


def uuid4() -> UUID:
    """What ``uuid.uuid4()`` returns (the same construction), about twice as fast."""
    value = _new(UUID)
    _set(value, "int", int.from_bytes(os.urandom(16)) & _KEEP | _MARK)
    _set(value, "is_safe", SafeUUID.unknown)
    return value
