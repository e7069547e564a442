"""Id policy: how a caller's reference to a lead or deal becomes leadflow's UUID.

An external id (email or CRM id) maps to a stable UUID (uuid5), so capturing the same
lead twice, even from two processes at once, can never create two leads. A reference
that reads as a UUID is leadflow's own id when that aggregate exists, else an external id.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.input_limits import comparable_identifier

_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")
_UUID_TEXT_LENGTHS = frozenset({32, 36, 38, 45})  # hex, hyphenated, {braced}, urn:uuid:


def normalise_ref(ref: str) -> str:
    """External ids compare as ``domain.input_limits.comparable_identifier`` says."""
    return comparable_identifier(ref)


@lru_cache(maxsize=4096)
def lead_id_for(external_id: str) -> UUID:
    return uuid5(_ID_NAMESPACE, f"lead:{normalise_ref(external_id)}")


@lru_cache(maxsize=4096)
def deal_id_for(external_id: str) -> UUID:
    return uuid5(_ID_NAMESPACE, f"deal:{normalise_ref(external_id)}")


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
