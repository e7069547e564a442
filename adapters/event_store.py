"""The event store the settings choose, SQLite (embedded) or PostgreSQL: eventsourcing's
environment for it, and the lock that serialises schema creation on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from adapters.settings import Settings


def event_store_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's environment for the configured store, cipher and compressor."""
    env: dict[str, str] = {"AGGREGATE_CACHE_MAXSIZE": "5000"}
    if settings.postgres_dsn is not None:
        parts = conninfo_to_dict(settings.postgres_dsn.get_secret_value())
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=str(parts.get("dbname", "leadflow")),
            POSTGRES_HOST=str(parts.get("host", "127.0.0.1")),
            POSTGRES_PORT=str(parts.get("port", "5432")),
            POSTGRES_USER=str(parts.get("user", "leadflow")),
            POSTGRES_PASSWORD=str(parts.get("password", "")),
            POSTGRES_SCHEMA=settings.postgres_schema,
        )
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(settings.sqlite_event_store),
            SQLITE_LOCK_TIMEOUT="30",
        )
    if settings.cipher_key is not None:
        env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
        env["CIPHER_KEY"] = settings.cipher_key.get_secret_value()
    if settings.compress_events:
        env["COMPRESSOR_TOPIC"] = "eventsourcing.compressor:ZlibCompressor"
    return env


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
