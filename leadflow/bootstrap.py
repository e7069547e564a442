"""The composition root: every process and command of leadflow is built here, from one
settings object."""

from __future__ import annotations

import threading

import psycopg
import structlog
from eventsourcing.persistence import OperationalError as StoreOperationalError

from adapters.event_store import event_store_env, postgres_ddl_lock
from adapters.logging import error_text
from adapters.retrying import retry_while_unavailable
from adapters.settings import Settings
from domain.scoring import load_scoring_rules
from domain.stage_model import load_stage_model
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.bootstrap")


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
