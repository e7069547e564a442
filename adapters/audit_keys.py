"""The audit key: an Ed25519 key pair that signs the head of the event log.

``leadflow audit keygen`` writes the private part (PEM, mode 0600) and the public part
beside it (``FILE.pub``). ``LEADFLOW_AUDIT_KEY_FILE`` names either: the private part
signs (and verifies), the public part only verifies, so an auditor never holds the
signing key. The key id is a short public name of the key: 16 hex of SHA-256 over a
fixed label and the raw public key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapters.event_store import StoreSettingsError

KEY_SETTING = "LEADFLOW_AUDIT_KEY_FILE"
_KEY_ID_LABEL = b"leadflow audit key id v1\x00"
_Key = TypeVar("_Key")


def public_key_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def raw_public_bytes(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_KEY_ID_LABEL + raw_public_bytes(public)).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AuditKey:
    """A loaded audit key; ``private`` is None when only the public part was given."""

    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None
    source: Path | None

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def public_only(self) -> AuditKey:
        return AuditKey(self.public, None, self.source)

    def sign(self, message: bytes) -> bytes:
        if self.private is None:
            msg = (
                f"{KEY_SETTING}: {self.source} holds only a public key; this process can "
                "verify the signed log but not write events (give it the private key)"
            )
            raise StoreSettingsError(msg)
        return self.private.sign(message)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def generate_key_pair(out: Path) -> AuditKey:
    """A new key pair: the private part at ``out`` (created, mode 0600, never
    overwritten), the public part at ``out.pub``."""
    public_out = public_key_path(out)
    for path in (out, public_out):
        if path.exists():
            msg = f"{path} already exists (a key file is never overwritten)"
            raise FileExistsError(msg)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    public_out.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return AuditKey(private.public_key(), private, out)


def load_audit_key(path: Path) -> AuditKey:
    """The key in ``path`` (PEM, private or public Ed25519); StoreSettingsError naming
    the setting when it cannot be read or is not such a key."""
    try:
        data = path.read_bytes()
    except OSError as error:
        msg = f"{KEY_SETTING}: cannot read {path}: {error.strerror or error}"
        raise StoreSettingsError(msg) from None
    if b"PRIVATE KEY" in data:
        private = _load(path, lambda: serialization.load_pem_private_key(data, password=None))
        if not isinstance(private, Ed25519PrivateKey):
            raise _not_ed25519(path)
        return AuditKey(private.public_key(), private, path)
    public = _load(path, lambda: serialization.load_pem_public_key(data))
    if not isinstance(public, Ed25519PublicKey):
        raise _not_ed25519(path)
    return AuditKey(public, None, path)


def _load(path: Path, load: Callable[[], _Key]) -> _Key:
    try:
        return load()
    except (ValueError, TypeError) as error:
        msg = (
            f"{KEY_SETTING}: {path} is not a PEM key ({error}); "
            "create one with leadflow audit keygen"
        )
        raise StoreSettingsError(msg) from None


def _not_ed25519(path: Path) -> StoreSettingsError:
    return StoreSettingsError(
        f"{KEY_SETTING}: {path} is not an Ed25519 key; create one with leadflow audit keygen"
    )
