"""The event store the store settings choose, SQLite (embedded) or PostgreSQL:
eventsourcing's environment for it, a PostgreSQL factory whose connections use the
whole DSN, a SQLite factory whose connections overwrite deleted content, and the lock
that serialises schema creation on PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool, SQLiteFactory
from eventsourcing.utils import Environment, EnvType
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from adapters.command_ledger import ledger_recorder_topic
from adapters.private_files import private_file
from adapters.settings import StoreSettings

_DSN_PARTS = ("dbname", "host", "port", "user", "password")
_AES_KEY_SIZES = (16, 24, 32)
_FINGERPRINT_LABEL = b"leadflow cipher key fingerprint v1\x00"


class StoreSettingsError(Exception):
    """The store settings cannot be used as they are (a malformed key, a missing extra,
    settings that disagree with the store): one line naming the setting."""


def cipher_key_bytes(store: StoreSettings) -> bytes | None:
    """The configured AES key, checked: base64 of 16, 24 or 32 bytes, with the
    ``cryptography`` package installed. None when events are not encrypted."""
    if store.cipher_key is None:
        return None
    text = store.cipher_key.get_secret_value().strip()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        msg = (
            "LEADFLOW_CIPHER_KEY is not valid base64 "
            "(expected a base64 AES key of 16, 24 or 32 bytes)"
        )
        raise StoreSettingsError(msg) from None
    if len(key) not in _AES_KEY_SIZES:
        msg = (
            f"LEADFLOW_CIPHER_KEY decodes to {len(key)} bytes; an AES key has 16, 24 or 32 "
            "bytes (base64)"
        )
        raise StoreSettingsError(msg)
    try:
        importlib.import_module("cryptography")
    except ImportError:
        msg = (
            "LEADFLOW_CIPHER_KEY is set but the 'cryptography' package is not installed: "
            "pip install 'leadflow[crypto]'"
        )
        raise StoreSettingsError(msg) from None
    return key


def key_fingerprint(key: bytes) -> str:
    """A short public name of a cipher key (never the key): 16 hex of SHA-256 over a fixed
    label and the key."""
    return hashlib.sha256(_FINGERPRINT_LABEL + key).hexdigest()[:16]


class DsnPostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory with connections made from the whole DSN.

    eventsourcing builds its pool from separate parts (dbname, host, port, user,
    password), which would drop every other DSN option (``sslmode``, ``connect_timeout``,
    ``application_name``, ``options``...). The parts stay in the environment only
    because the base factory insists on them; the pool connects with the DSN itself.
    """

    POSTGRES_DSN = "LEADFLOW_EVENT_STORE_DSN"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        assert isinstance(pool.kwargs, dict)
        for key in _DSN_PARTS:
            pool.kwargs.pop(key, None)
        pool.conninfo = self.env.get(self.POSTGRES_DSN) or ""


SECURE_DELETE = "PRAGMA secure_delete=ON"  # deleted rows do not stay in free pages


_WAL_SWITCH_SECONDS = 5.0


class _SecureDeletePool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = self._connected_in_wal_mode()
        connection.cursor().execute(SECURE_DELETE)
        return connection

    def _connected_in_wal_mode(self) -> SQLiteConnection:
        """A new connection; the first one of a new file switches it to WAL, which SQLite
        refuses at once ("database is locked", no busy wait) while another connection
        writes to it: tried again until it succeeds or the lock timeout passes."""
        deadline = time.monotonic() + (self.lock_timeout or _WAL_SWITCH_SECONDS)
        pause = 0.005
        while True:
            try:
                return super()._create_connection()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


class SecureDeleteSQLiteFactory(SQLiteFactory):
    """eventsourcing's SQLite factory whose connections run ``secure_delete``, so what is
    deleted is overwritten rather than left readable in the file's free pages."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        self.datastore.pool = _SecureDeletePool(
            db_name=pool.db_name, lock_timeout=pool.lock_timeout
        )
        pool.close()


def event_store_env(store: StoreSettings) -> dict[str, str]:
    """eventsourcing's environment for the configured store, cipher and compressor (the
    cipher key checked first: StoreSettingsError names what is wrong with it)."""
    env: dict[str, str] = {
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        "APPLICATION_RECORDER_TOPIC": ledger_recorder_topic(postgres=store.dsn is not None),
    }
    if store.dsn is not None:
        parts = conninfo_to_dict(store.dsn)
        env.update(
            PERSISTENCE_MODULE=f"{__name__}:{DsnPostgresFactory.__name__}",
            POSTGRES_DBNAME=str(parts.get("dbname", "leadflow")),
            POSTGRES_HOST=str(parts.get("host", "127.0.0.1")),
            POSTGRES_PORT=str(parts.get("port", "5432")),
            POSTGRES_USER=str(parts.get("user", "leadflow")),
            POSTGRES_PASSWORD=str(parts.get("password", "")),
            POSTGRES_SCHEMA=store.postgres_schema,
        )
        env[DsnPostgresFactory.POSTGRES_DSN] = store.dsn
    else:
        private_file(store.sqlite_event_store)
        env.update(
            PERSISTENCE_MODULE=f"{__name__}:{SecureDeleteSQLiteFactory.__name__}",
            SQLITE_DBNAME=str(store.sqlite_event_store),
            SQLITE_LOCK_TIMEOUT="30",
        )
    key = cipher_key_bytes(store)
    if key is not None:
        env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
        env["CIPHER_KEY"] = base64.b64encode(key).decode("ascii")
    if store.compress_events:
        env["COMPRESSOR_TOPIC"] = "eventsourcing.compressor:ZlibCompressor"
    return env


def connect_postgres(dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection from the whole DSN, giving up after 10 s unless the DSN
    sets its own ``connect_timeout``."""
    if "connect_timeout" in conninfo_to_dict(dsn):
        return psycopg.connect(dsn, autocommit=True)
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


# PostgreSQL refuses concurrent DDL on the same catalog rows ("tuple concurrently
# updated", or a duplicate schema name), so every process that creates schemas or tables
# (event store, stream side tables, read models) takes this advisory lock first.
DDL_LOCK_KEY = 0x1EAD_F10E


@contextmanager
def postgres_ddl_lock(dsn: str, schema: str) -> Iterator[None]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK_KEY,))
