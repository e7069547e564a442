"""Opening only the personal fields the read models store.

The facts (``projections.facts``) read three personal values: a captured lead's external
id and a lost deal's reason and competitor. Opening every other sealed field of every
event (a key look-up, AES-GCM and JSON per value) changes no read model, so the projector
decodes with ``ProjectedPersonal``, which opens those three and reads the others as the
erased marker, never stored. A lead whose key was destroyed still reads ``[erased]``.
Before decoding a batch, ``load`` reads the keys of the leads it captures in one query
(one read per lead otherwise). A sealed value left unopened is not checked either: one
altered in the store breaks its event's hash chain, which ``leadflow verify`` reports.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.events import DealLost, LeadCaptured
from domain.personal_fields import ERASED, PersonalData

PROJECTED_FIELDS = frozenset(
    {
        (get_topic(LeadCaptured), "external_id"),
        (get_topic(DealLost), "reason"),
        (get_topic(DealLost), "competitor"),
    }
)
"""(event topic, field) of every personal value some read model stores."""
CAPTURED_TOPIC = get_topic(LeadCaptured)
CAPTURED_TYPE = LeadCaptured.__name__


@runtime_checkable
class _LoadsKeys(Protocol):
    def load(self, key_owners: Collection[UUID]) -> None: ...


class ProjectedPersonal:
    """``personal`` opening only ``PROJECTED_FIELDS``; a read-only ``PersonalData``."""

    def __init__(self, personal: PersonalData) -> None:
        self.personal = personal

    def seal(self, key_owner: UUID, topic: str, field: str, value: Any) -> str:
        msg = "the projector only reads personal data"
        raise TypeError(msg)

    def seal_fields(self, key_owner: UUID, topic: str, values: Mapping[str, Any]) -> dict[str, str]:
        return {field: self.seal(key_owner, topic, field, v) for field, v in values.items()}

    def prepare(self, key_owners: Collection[UUID]) -> None:
        """Nothing to prepare: opening needs no new key."""

    def open(self, sealed: str, topic: str, field: str) -> Any:
        if (topic, field) in PROJECTED_FIELDS:
            return self.personal.open(sealed, topic, field)
        return ERASED

    def load(self, key_owners: Collection[UUID]) -> None:
        """Read these owners' keys ahead in one go, where the seal can."""
        if key_owners and isinstance(self.personal, _LoadsKeys):
            self.personal.load(key_owners)


def projected(personal: PersonalData | None) -> ProjectedPersonal | None:
    """What the projector decodes with: ``personal`` opening only what it stores."""
    return None if personal is None else ProjectedPersonal(personal)
