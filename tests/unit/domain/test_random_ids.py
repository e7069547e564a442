"""New event ids are version 4 UUIDs like ``uuid.uuid4()``'s, in every way a UUID is used."""

from __future__ import annotations

import copy
import pickle
from uuid import UUID, SafeUUID

from domain.random_ids import uuid4


def test_a_uuid4_is_a_version_4_uuid_like_uuid4s() -> None:
    values = [uuid4() for _ in range(1000)]
    assert len(set(values)) == 1000
    for value in values:
        assert type(value) is UUID
        assert value.version == 4
        assert value.variant == "specified in RFC 4122"
        assert value.is_safe is SafeUUID.unknown
        again = UUID(str(value))
        assert again == value
        assert hash(again) == hash(value)
        assert UUID(bytes=value.bytes, version=4) == value  # what uuid4() would build
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.deepcopy(value) == value


def test_uuid4s_use_all_their_random_bits() -> None:
    seen = 0
    for _ in range(200):
        seen |= uuid4().int
    assert seen == ((1 << 128) - 1) & ~((0x4000 << 48) | (0xB000 << 64))
