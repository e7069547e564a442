"""API keys of ``leadflow serve``: a table in the event store's database.

A token is ``lf_`` and 32 random bytes (URL-safe base64); only its SHA-256 is stored (a
token that random needs no slow hash), and it is shown once, when the key is created.
A key has a unique name among the active keys: the name is the actor recorded on the
events its requests cause. Revoked keys stay listed, with the time of their revocation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from adapters.store_db import StoreDb

Role = Literal["marketing", "sales", "manager", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
TOKEN_PREFIX = "lf_"  # noqa: S105 - a prefix, not a secret
MAX_NAME = 100

_TABLE = """CREATE TABLE IF NOT EXISTS {keys} (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)"""
_COLUMNS = "key_id, name, role, created_at, revoked_at"


class ApiKeyError(ValueError):
    """A key that cannot be created or revoked as asked (the reason names it)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME or not cleaned.isprintable():
        msg = f"key name {name!r}: give 1 to {MAX_NAME} printable characters"
        raise ApiKeyError(msg)
    return cleaned


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    msg = f"unknown role {role!r}; roles: {', '.join(ROLES)}"
    raise ApiKeyError(msg)


class ApiKeys:
    """The keys table (created if missing) on one ``StoreDb`` connection."""

    def __init__(self, db: StoreDb) -> None:
        self._db = db
        db.create_table(_TABLE, keys="leadflow_api_keys")

    def create(self, name: str, role: str) -> tuple[ApiKey, str]:
        """A new key and its token (the only time the token is known)."""
        name, checked_role = check_name(name), check_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(uuid.uuid4().hex, name, checked_role, datetime.now(UTC))
        with self._db.transaction():
            if any(k.name == name and k.active for k in self.list()):
                msg = f"an active key is already named {name!r}; revoke it first or pick another"
                raise ApiKeyError(msg)
            self._db.execute(
                "INSERT INTO {keys} (key_id, name, role, token_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key.key_id, key.name, key.role, token_hash(token), key.created_at.isoformat()),
                keys="leadflow_api_keys",
            )
        return key, token

    def list(self) -> list[ApiKey]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM {{keys}} ORDER BY created_at, key_id",  # noqa: S608
            keys="leadflow_api_keys",
        )
        return [_key(row) for row in rows]

    def revoke(self, name_or_id: str) -> ApiKey:
        """Revoke the active key of that name or id."""
        with self._db.transaction():
            found = [k for k in self.list() if k.active and name_or_id in (k.name, k.key_id)]
            if not found:
                msg = f"no active API key named or with id {name_or_id!r}"
                raise ApiKeyError(msg)
            key = found[0]
            revoked_at = datetime.now(UTC)
            self._db.execute(
                "UPDATE {keys} SET revoked_at = ? WHERE key_id = ?",
                (revoked_at.isoformat(), key.key_id),
                keys="leadflow_api_keys",
            )
        return ApiKey(key.key_id, key.name, key.role, key.created_at, revoked_at)

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key of this token, or None."""
        digest = token_hash(token)
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, token_hash FROM {{keys}} WHERE token_hash = ?",  # noqa: S608
            (digest,),
            keys="leadflow_api_keys",
        )
        for row in rows:
            if hmac.compare_digest(str(row[-1]), digest):
                key = _key(row[:-1])
                return key if key.active else None
        return None


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, name, role, created_at, revoked_at = row
    return ApiKey(
        str(key_id),
        str(name),
        check_role(str(role)),
        datetime.fromisoformat(str(created_at)),
        None if revoked_at is None else datetime.fromisoformat(str(revoked_at)),
    )
