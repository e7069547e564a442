"""Where the demo writes, and when it may start from empty.

The demo always starts from an empty event store, so its output is reproducible:
- an empty (or missing) store is used as it is;
- a store holding exactly what the previous demo wrote (its marker file ``demo.json``
  records how many events that was) is replaced without asking;
- any other store is left alone and the demo stops, unless ``--fresh`` says to delete it.
``--fresh`` deletes only leadflow's own files in the data dir: the event store, the read
models (with their SQLite journals) and the marker. With PostgreSQL nothing is ever
deleted: the demo needs an empty schema. The demo projects in-process, so Kafka mode is
refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.private_files import private_file
from adapters.settings import Settings
from leadflow.bootstrap import open_application, open_read_model
from leadflow.errors import CliError
from projections.store import ReadModelStore
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.demo.workspace")

MARKER = "demo.json"
DEMO_ACTOR = "leadflow-demo"
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


class DemoMarker(BaseModel):
    """What the last demo wrote into a data dir."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    seed: int
    leads: int
    events: int


def marker_path(settings: Settings) -> Path:
    return settings.store.data_dir / MARKER


def read_marker(settings: Settings) -> DemoMarker | None:
    path = marker_path(settings)
    try:
        return DemoMarker.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError:
        log.warning("demo_marker_unreadable", path=str(path))
        return None


def write_marker(settings: Settings, marker: DemoMarker) -> None:
    if settings.store.postgres_dsn is None:
        document: dict[str, Any] = {"written_by": "leadflow demo", **marker.model_dump()}
        path = private_file(marker_path(settings))
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def leadflow_files(settings: Settings) -> list[Path]:
    """The files ``--fresh`` may delete: leadflow's SQLite stores and the demo marker."""
    stores = (settings.store.sqlite_event_store, settings.store.sqlite_read_models)
    files = [
        store.with_name(store.name + suffix) for store in stores for suffix in _SQLITE_SUFFIXES
    ]
    return [*files, marker_path(settings)]


def _delete_files(settings: Settings) -> None:
    for path in leadflow_files(settings):
        path.unlink(missing_ok=True)
    log.info("demo_data_dir_cleared", data_dir=str(settings.store.data_dir))


def open_demo_stores(settings: Settings, fresh: bool) -> tuple[LeadflowApp, ReadModelStore]:
    """The event store and read model the demo writes into, both empty."""
    if settings.kafka_mode:
        msg = (
            "leadflow demo runs embedded (projectors in-process); "
            "unset LEADFLOW_KAFKA_BOOTSTRAP to run it"
        )
        raise CliError(msg)
    if settings.store.postgres_dsn is not None and fresh:
        msg = (
            "--fresh never deletes PostgreSQL data; point LEADFLOW_POSTGRES_SCHEMA at a new "
            "schema (it is created) to run the demo there"
        )
        raise CliError(msg)
    if fresh:
        _delete_files(settings)
    app = open_application(settings, default_actor=DEMO_ACTOR)
    stored = app.recorder.max_notification_id() or 0
    if stored:
        app.close()
        previous = read_marker(settings)
        if settings.store.postgres_dsn is not None or previous is None or previous.events != stored:
            raise CliError(_not_empty(settings, stored, previous))
        log.info(
            "demo_replacing_previous",
            data_dir=str(settings.store.data_dir),
            seed=previous.seed,
            leads=previous.leads,
        )
        _delete_files(settings)
        app = open_application(settings, default_actor=DEMO_ACTOR)
    store = open_read_model(settings)
    store.ensure_schema()
    if store.last_notification_id() > 0:
        store.reset()  # left over from an event store that no longer exists
    return app, store


def _not_empty(settings: Settings, stored: int, previous: DemoMarker | None) -> str:
    if settings.store.postgres_dsn is not None:
        return (
            f"the PostgreSQL event store (schema {settings.store.postgres_schema}) already holds "
            f"{stored:,} events; the demo needs an empty one: set LEADFLOW_POSTGRES_SCHEMA "
            "to a new schema"
        )
    what = (
        f"{stored - previous.events:,} events were added after the last demo"
        if previous is not None
        else "the demo did not write them"
    )
    return (
        f"{settings.store.sqlite_event_store} already holds {stored:,} events and {what}; "
        "rerun with --fresh to delete leadflow's files there, or choose another --data-dir"
    )
