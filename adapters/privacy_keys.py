"""The privacy master key: 32 random bytes from which leadflow derives its privacy keys.

``LEADFLOW_PRIVACY_MASTER_KEY_FILE`` names the key file. Unset, the key is read from
``privacy-master.key`` in the data directory (beside the database files, not inside
them), created there on first start, mode 0600; operators should move it to a secret
store and point the variable at it. The file holds one line::

    leadflow-privacy-master-key-v1 <the 32 bytes, base64>

Sub-keys are derived with HKDF-SHA256, one label each (``derive``), so the key of the
pseudonymous ids and the later per-lead key-wrapping key never share bytes. The store
records the key's check value (``check_value``), never the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from adapters.event_store import StoreSettingsError
from adapters.private_files import PRIVATE_FILE, private_dir

KEY_SETTING = "LEADFLOW_PRIVACY_MASTER_KEY_FILE"
DEFAULT_FILE_NAME = "privacy-master.key"
KEY_SIZE = 32
_HEADER = "leadflow-privacy-master-key-v1"
_HKDF_INFO = b"leadflow privacy v1\x00"
_CHECK_LABEL = "key check"
_CHECK_MESSAGE = b"leadflow key check"

log = structlog.get_logger("leadflow.privacy_keys")


@dataclass(frozen=True, slots=True)
class MasterKey:
    """A loaded master key and the file it came from."""

    secret: bytes = field(repr=False)
    source: Path

    def derive(self, label: str) -> bytes:
        """The 32-byte sub-key for ``label`` (HKDF-SHA256; distinct labels, unrelated keys)."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_SIZE,
            salt=None,
            info=_HKDF_INFO + label.encode(),
        )
        return hkdf.derive(self.secret)

    @property
    def check_value(self) -> str:
        """A public name of the key (32 hex of an HMAC under a derived key), never the key."""
        digest = hmac.new(self.derive(_CHECK_LABEL), _CHECK_MESSAGE, hashlib.sha256)
        return digest.hexdigest()[:32]


def master_key(key_file: Path | None, data_dir: Path) -> MasterKey:
    """The key ``key_file`` names (StoreSettingsError naming the setting when it is missing,
    unreadable or malformed); with no ``key_file``, the data directory's own key, created
    on first use."""
    if key_file is not None:
        return load_master_key(key_file.expanduser(), f"{KEY_SETTING}: ")
    path = data_dir.expanduser() / DEFAULT_FILE_NAME
    if not path.exists():
        _create(path)
    return load_master_key(path, f"{KEY_SETTING} is not set and ")


def load_master_key(path: Path, where: str) -> MasterKey:
    """The key in ``path``; StoreSettingsError starting with ``where`` when it is not one."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not ASCII text"
        msg = f"{where}cannot read {path}: {reason or error}"
        raise StoreSettingsError(msg) from None
    parts = text.split()
    if len(parts) != 2 or parts[0] != _HEADER:
        msg = f"{where}{path} is not a privacy master key (one line: {_HEADER} <base64>)"
        raise StoreSettingsError(msg)
    try:
        secret = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        msg = f"{where}{path}: the key is not valid base64"
        raise StoreSettingsError(msg) from None
    if len(secret) != KEY_SIZE:
        msg = f"{where}{path}: the key has {len(secret)} bytes; a master key has {KEY_SIZE}"
        raise StoreSettingsError(msg)
    return MasterKey(secret, path)


def key_file_text(secret: bytes) -> str:
    return f"{_HEADER} {base64.b64encode(secret).decode('ascii')}\n"


def _create(path: Path) -> None:
    """A new random key at ``path``, 0600 in a 0700 folder, appearing whole: written to a
    temporary file, then linked into place (a key another process linked first wins)."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key_file_text(secrets.token_bytes(KEY_SIZE)))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        log.warning("privacy_master_key_created", path=str(path), setting=KEY_SETTING)
    finally:
        temporary.unlink(missing_ok=True)
