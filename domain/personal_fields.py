"""Which fields of leadflow's events hold personal data, and how they are sealed.

A personal field is stored sealed: encrypted with its lead's data key before the event is
hashed, so the hash chain covers the ciphertext and still verifies once the key is
destroyed (``leadflow forget``). Firmographics (industry, employees, country, revenue),
source and campaign, stages, scores, amounts, owners and times stay readable: reports
and scoring read them, and they describe the account or the sales team, not the person.

The encryption itself is an adapter's (``PersonalData``, a port); this module only knows
where personal values are, what a sealed value looks like, and what stands for one whose
key was destroyed: ``"[erased]"`` for text, ``{}`` for a mapping, and every BANT answer
``"[erased]"``. A sealed value is text starting with ``SEALED_PREFIX``, whose first
character is a control character that no caller's text may hold
(``domain.input_limits.check_text``), so it is never confused with what a person typed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal, Protocol
from uuid import UUID

from domain.events import (
    ContactLogged,
    DealLost,
    DealOpened,
    DealReopened,
    DomainEvent,
    EngagementRecorded,
    LeadAccepted,
    LeadAttributesUpdated,
    LeadCaptured,
    LeadDisqualified,
    LeadFastTracked,
    LeadQualifiedAsMQL,
    LeadQualifiedAsSQL,
    LeadRecycled,
    LeadRejected,
    LeadReopened,
)

SEALED_PREFIX = "\x1fsealed:v1:"
ERASED_TEXT = "[erased]"  # a sealed value whose key was destroyed
SEALED_TEXT = "[sealed]"  # a sealed value read where no key is at hand
FIRMOGRAPHIC_ATTRIBUTES = frozenset({"industry", "employees", "country", "revenue"})
BANT_ANSWERS = ("budget", "authority", "need", "timeline")

# text: a string; mapping: a JSON object sealed whole; bant: the four answers sealed
# whole; attributes: each attribute but the firmographic ones sealed on its own
FieldKind = Literal["text", "mapping", "bant", "attributes"]

PERSONAL_FIELDS: Mapping[type[DomainEvent], Mapping[str, FieldKind]] = {
    LeadCaptured: {"external_id": "text", "attributes": "attributes"},
    LeadAttributesUpdated: {"attributes": "attributes"},
    EngagementRecorded: {"properties": "mapping"},
    ContactLogged: {"outcome": "text"},
    LeadQualifiedAsMQL: {"reason": "text"},
    LeadAccepted: {"reason": "text"},
    LeadRejected: {"reason": "text"},
    LeadQualifiedAsSQL: {"bant": "bant"},
    LeadFastTracked: {"reason": "text"},
    LeadRecycled: {"reason": "text"},
    LeadDisqualified: {"reason": "text"},
    LeadReopened: {"reason": "text"},
    DealOpened: {"lead_external_id": "text"},
    DealLost: {"reason": "text", "competitor": "text"},
    DealReopened: {"reason": "text"},
}


class Erased:
    """What ``PersonalData.open`` gives for a value whose key was destroyed."""


ERASED = Erased()


class PersonalData(Protocol):
    """Seals and opens personal values under their lead's data key (an adapter)."""

    def seal(self, key_owner: UUID, topic: str, field: str, value: Any) -> str:
        """``value`` sealed (text starting with SEALED_PREFIX); a DomainError when the
        owner's key was destroyed."""
        ...

    def seal_fields(self, key_owner: UUID, topic: str, values: Mapping[str, Any]) -> dict[str, str]:
        """Each value sealed as ``seal`` would, for the field its key names (the owner's
        key looked up once)."""
        ...

    def prepare(self, key_owners: Collection[UUID]) -> None:
        """Make sure these owners have keys: one round trip for a batch about to seal for
        them, where ``seal`` would take one each."""
        ...

    def open(self, sealed: str, topic: str, field: str) -> Any:
        """The value ``seal`` was given, or ERASED when its key was destroyed."""
        ...


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_state(
    event_class: type[DomainEvent],
    topic: str,
    key_owner: UUID,
    state: dict[str, Any],
    personal: PersonalData,
) -> None:
    """Seal, in place, the personal values of an event's stored state."""
    fields = PERSONAL_FIELDS.get(event_class, {})
    plain: dict[str, Any] = {}
    for name, kind in fields.items():
        value = state.get(name)
        if value is None:
            continue
        if kind == "attributes":
            plain.update(
                (f"{name}.{key}", item)
                for key, item in value.items()
                if key not in FIRMOGRAPHIC_ATTRIBUTES and item is not None
            )
        else:
            plain[name] = value
    if not plain:
        return
    sealed = personal.seal_fields(key_owner, topic, plain)
    for name, kind in fields.items():
        value = state.get(name)
        if value is None:
            continue
        if kind == "attributes":
            state[name] = {key: sealed.get(f"{name}.{key}", item) for key, item in value.items()}
        else:
            state[name] = sealed[name]


def open_state(
    event_class: type[DomainEvent],
    topic: str,
    state: dict[str, Any],
    personal: PersonalData | None,
) -> dict[str, Any]:
    """The stored state with its sealed values opened (a copy when any is): plain where
    the key is at hand, marked erased where it was destroyed, marked sealed where no
    ``personal`` is given. Values stored plain (before sealing) are left as they are."""
    fields = PERSONAL_FIELDS.get(event_class)
    if not fields:
        return state
    opened = state
    for name, kind in fields.items():
        value = state.get(name)
        if kind == "attributes" and isinstance(value, dict):
            if any(is_sealed(item) for item in value.values()):
                text = _text_of(personal)
                value = {
                    key: _open(personal, item, topic, f"{name}.{key}", text)
                    for key, item in value.items()
                }
                opened = {**opened, name: value}
        elif is_sealed(value):
            plain = _open(personal, value, topic, name, _MARKERS[kind](_text_of(personal)))
            opened = {**opened, name: plain}
    return opened


def _text_of(personal: PersonalData | None) -> str:
    return SEALED_TEXT if personal is None else ERASED_TEXT


def _open(personal: PersonalData | None, value: Any, topic: str, field: str, marker: Any) -> Any:
    if not is_sealed(value):
        return value
    if personal is None:
        return marker
    plain = personal.open(value, topic, field)
    return marker if isinstance(plain, Erased) else plain


_MARKERS: Mapping[FieldKind, Callable[[str], Any]] = {
    "text": lambda text: text,
    "mapping": lambda text: {},
    "bant": lambda text: dict.fromkeys(BANT_ANSWERS, text),
    "attributes": lambda text: text,
}
