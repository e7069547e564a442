"""Id policy: how a caller's reference to a lead or deal becomes leadflow's UUID.

An external id (email or CRM id) maps to a stable UUID (uuid5), so capturing the same
lead twice, even from two processes at once, can never create two leads.

One rule for references: a reference that reads as a UUID (hex, hyphenated, braced or
``urn:uuid:``) names leadflow's own id. An external id never reads as a UUID: one is
refused where an aggregate is created under it (``capture_lead``, ``open_deal``), so no
new lead or deal can be confused with another's own id. (A store from before the rule may
hold such external ids: where no aggregate has that own id, the ref still reaches them.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import DomainError
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
