"""Id policy: how a caller's reference to a lead or deal becomes leadflow's UUID.

An external id (email or CRM id) maps to a stable UUID through the store's id scheme,
so capturing the same lead twice, even from two processes at once, can never create two
leads. The scheme of a new store is ``IndexedIds``: a lead's id is random (uuid4), chosen
when it is first captured, and found again through a keyed index (HMAC-SHA256 of the
email under a secret sub-key of the privacy master key -> lead id); forgetting the lead
deletes its index entry, so the email then maps to nothing and a later capture makes a
new, unlinked lead. Deal ids stay ``KeyedIds`` (deal refs are CRM ids, not personal).
Stores created before keep their recorded scheme: ``KeyedIds`` (lead ids HMAC-SHA256
under a secret id key: unlinkable without the key, but the same for ever) or
``Uuid5Ids`` (uuid5 under a namespace published here); the composition root chooses.

One rule for references: a reference that reads as a UUID (hex, hyphenated, braced or
``urn:uuid:``) names leadflow's own id. An external id never reads as a UUID: one is
refused where an aggregate is created under it (``capture_lead``, ``open_deal``), so no
new lead or deal can be confused with another's own id. (A store from before the rule may
hold such external ids: where no aggregate has that own id, the ref still reaches them.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError
from domain.input_limits import comparable_identifier

ID_KEY_LABEL = "lead and deal ids"  # the master key's sub-key for KeyedIds
_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")
_UUID_TEXT_LENGTHS = frozenset({32, 36, 38, 45})  # hex, hyphenated, {braced}, urn:uuid:
_CACHED_IDS = 4096


def normalise_ref(ref: str) -> str:
    """External ids compare as ``domain.input_limits.comparable_identifier`` says."""
    return comparable_identifier(ref)


class IdScheme(Protocol):
    """How external ids become lead and deal UUIDs; ``name`` is recorded in the store."""

    @property
    def name(self) -> str: ...

    def lead(self, external_id: str) -> UUID:
        """The lead's id; for an external id no lead has, one that no lead ever has."""
        ...

    def new_lead(self, external_id: str) -> UUID:
        """The id to capture the lead under (allocated now if it has none)."""
        ...

    def deal(self, external_id: str) -> UUID: ...

    def batch(self, leads: Iterable[str], captured: Iterable[str]) -> AbstractContextManager[None]:
        """Within it, the ids of ``leads`` are looked up and those of ``captured``
        allocated at once (one query for a batch of commands, not one per command)."""
        ...

    def is_stale(self, external_id: str, lead_id: UUID) -> bool:
        """``lead_id`` (an erased lead) was remembered for ``external_id``, which no longer
        maps to it (forgotten by another process): the entry is dropped."""
        ...

    def forget_lead(self, lead_id: UUID) -> bool:
        """Unlink the lead from its external id; False when the scheme cannot."""
        ...


class _CachedIds:
    """A scheme's ``_derive(kind, normalised ref)``, cached per external id."""

    name = ""

    def __init__(self) -> None:
        self._lead = lru_cache(maxsize=_CACHED_IDS)(self._id_of("lead"))
        self._deal = lru_cache(maxsize=_CACHED_IDS)(self._id_of("deal"))

    def _id_of(self, kind: str) -> Callable[[str], UUID]:
        return lambda external_id: self._derive(f"{kind}:{normalise_ref(external_id)}")

    def _derive(self, text: str) -> UUID:
        raise NotImplementedError

    def lead(self, external_id: str) -> UUID:
        return self._lead(external_id)

    def new_lead(self, external_id: str) -> UUID:
        return self._lead(external_id)

    def deal(self, external_id: str) -> UUID:
        return self._deal(external_id)

    @contextmanager
    def batch(self, leads: Iterable[str], captured: Iterable[str]) -> Iterator[None]:
        yield  # derived ids need no look-up

    def is_stale(self, external_id: str, lead_id: UUID) -> bool:
        return False

    def forget_lead(self, lead_id: UUID) -> bool:
        return False  # a derived id stays derivable: the scheme cannot unlink it


class KeyedIds(_CachedIds):
    """HMAC-SHA256(id key, ``lead:``/``deal:`` + normalised ref) as an RFC 9562 version 8
    UUID: the first 16 bytes of the MAC with the version and variant bits set."""

    name = "hmac-sha256-uuid8"

    def __init__(self, id_key: bytes) -> None:
        if len(id_key) < 16:
            raise ValueError("an id key has at least 16 bytes")
        self._key = id_key
        super().__init__()

    def __repr__(self) -> str:
        return "KeyedIds(<key>)"

    def _derive(self, text: str) -> UUID:
        return uuid8(hmac.digest(self._key, text.encode(), hashlib.sha256))


def uuid8(digest: bytes) -> UUID:
    """The first 16 bytes of ``digest`` as an RFC 9562 version 8 UUID."""
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10
    return UUID(bytes=bytes(raw))


class Uuid5Ids(_CachedIds):
    """The scheme of stores created before keyed ids: uuid5 under a published namespace,
    which anyone with a list of emails can recompute."""

    name = "uuid5"

    def _derive(self, text: str) -> UUID:
        return uuid5(_ID_NAMESPACE, text)


def as_uuid(ref: str) -> UUID | None:
    """The reference as a UUID, if it reads as one."""
    if len(ref) not in _UUID_TEXT_LENGTHS:
        return None
    try:
        return UUID(ref)
    except ValueError:
        return None


def resolve_ref(ref: str, id_for: Callable[[str], UUID], exists: Callable[[UUID], bool]) -> UUID:
    """The aggregate ``ref`` addresses: its own UUID if that exists, else ``id_for(ref)``."""
    own_id = as_uuid(ref)
    if own_id is None:
        return id_for(ref)
    return own_id if exists(own_id) else id_for(ref)


class UuidShapedExternalId(DomainError):
    """An aggregate to be created under an external id that reads as a UUID."""

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(
            f"{kind} {ref!r} reads as a UUID, which always names leadflow's own id; "
            f"a new {kind} needs an external id that does not (an email or a CRM id)"
        )


def new_external_id(kind: str, ref: str) -> str:
    """``ref`` normalised, to create a lead or deal under; refused if it reads as a UUID."""
    if as_uuid(ref) is not None:
        raise UuidShapedExternalId(kind, ref)
    return normalise_ref(ref)
