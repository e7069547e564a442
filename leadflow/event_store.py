"""Open the event store that the settings choose: SQLite (embedded) or PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import structlog
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from domain.application import LeadflowApp
from domain.scoring import load_scoring_rules
from domain.stage_model import load_stage_model
from leadflow.logging import error_text
from leadflow.retrying import retry_while_unavailable
from leadflow.settings import Settings

log = structlog.get_logger("leadflow.event_store")


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


def open_application(settings: Settings, default_actor: str = "leadflow") -> LeadflowApp:
    if settings.postgres_dsn is None:
        return _construct(settings, default_actor)
    with postgres_ddl_lock(settings.postgres_dsn.get_secret_value(), settings.postgres_schema):
        return _construct(settings, default_actor)


def _construct(settings: Settings, default_actor: str) -> LeadflowApp:
    return LeadflowApp(
        event_store_env(settings),
        stage_model=load_stage_model(settings.stage_model_file),
        scoring_rules=load_scoring_rules(settings.scoring_rules_file),
        snapshot_interval=settings.snapshot_interval,
        default_actor=default_actor,
    )


def open_application_patiently(
    settings: Settings, default_actor: str, stop: threading.Event, max_backoff: float
) -> LeadflowApp | None:
    """``open_application``, retried with back-off while PostgreSQL is unreachable, so that
    a long-running process started before its database waits for it; None when stopped
    first."""

    def unreachable(error: Exception, retry_in: float) -> None:
        log.warning(
            "event_store_unreachable",
            actor=default_actor,
            error=error_text(error),
            retry_in=retry_in,
        )

    return retry_while_unavailable(
        lambda: open_application(settings, default_actor),
        lambda error: isinstance(error, psycopg.OperationalError | StoreOperationalError),
        stop.is_set,
        on_retry=unreachable,
        max_delay=max_backoff,
    )
