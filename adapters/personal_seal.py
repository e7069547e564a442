"""Sealing personal fields under their lead's data key (``domain.personal_fields``).

A sealed value is ``SEALED_PREFIX`` + the key owner's id (32 hex) + ``:`` + base64 of a
random 12-byte nonce and the AES-256-GCM ciphertext of the value's compact JSON. The
associated data binds it to its place: the key owner's id, the event's topic and the
field's name (``attributes.title`` for one attribute), so a sealed value moved to
another field or event does not open.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Collection, Mapping
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.lead_keys import NONCE_SIZE, LeadKeys
from domain.errors import ErasedLead
from domain.personal_fields import ERASED, SEALED_PREFIX, Erased

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class UnopenableValue(ValueError):
    """A sealed value that its key does not open: altered, moved, or not leadflow's."""


class PersonalSeal:
    """``domain.personal_fields.PersonalData`` under the store's per-lead keys."""

    def __init__(self, keys: LeadKeys) -> None:
        self.keys = keys

    def prepare(self, key_owners: Collection[UUID]) -> None:
        self.keys.prepare(key_owners)

    def load(self, key_owners: Collection[UUID]) -> None:
        """Read these owners' keys ahead, in one query: a reader about to open their values."""
        self.keys.load(key_owners)

    def seal(self, key_owner: UUID, topic: str, field: str, value: Any) -> str:
        return self.seal_fields(key_owner, topic, {field: value})[field]

    def seal_fields(self, key_owner: UUID, topic: str, values: Mapping[str, Any]) -> dict[str, str]:
        key = self.keys.key_for_new(key_owner)
        if key is None:
            raise ErasedLead(key_owner, f"record personal data in {next(iter(values), '')}")
        cipher = AESGCM(key)  # for this call only: no key outlives its destruction here
        prefix = f"{SEALED_PREFIX}{key_owner.hex}:"
        place = _aad_prefix(key_owner, topic)
        sealed = {}
        for field, value in values.items():
            nonce = os.urandom(NONCE_SIZE)
            plain = _COMPACT.encode(value).encode("utf-8")
            ciphertext = cipher.encrypt(nonce, plain, place + field.encode())
            sealed[field] = prefix + base64.b64encode(nonce + ciphertext).decode("ascii")
        return sealed

    def open(self, sealed: str, topic: str, field: str) -> Any | Erased:
        owner_hex, _, body = sealed.removeprefix(SEALED_PREFIX).partition(":")
        try:
            owner = UUID(hex=owner_hex)
            data = base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error):
            msg = f"sealed {field} is malformed (not an owner id and base64)"
            raise UnopenableValue(msg) from None
        key = self.keys.key(owner)
        if key is None:
            return ERASED
        try:
            plain = AESGCM(key).decrypt(
                data[:NONCE_SIZE], data[NONCE_SIZE:], _aad(owner, topic, field)
            )
        except InvalidTag:
            msg = f"sealed {field} does not open under the data key of {owner} (altered or moved)"
            raise UnopenableValue(msg) from None
        return json.loads(plain)


def _aad(owner: UUID, topic: str, field: str) -> bytes:
    return _aad_prefix(owner, topic) + field.encode()


def _aad_prefix(owner: UUID, topic: str) -> bytes:
    """The associated data of every field of one owner in one event, but the field."""
    return f"{owner}\x00{topic}\x00".encode()
