"""Run the projectors: embedded (follow the event store in-process) or Kafka mode
(consume the events topic in the projector's consumer group), and rebuild.
The run ends when its ``ProcessStop`` is set (a signal, a deadline), after the batch in
hand is committed. ``leadflow.bootstrap`` builds the stores and the stop.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Literal, TypeVar
from uuid import uuid4

import psycopg
import structlog
from eventsourcing.persistence import OperationalError as StoreOperationalError

from adapters.logging import error_text
from adapters.projector_settings import ProjectorSettings
from adapters.retrying import retry_while_unavailable
from adapters.settings import KafkaSettings
from adapters.stopping import ProcessStop
from consumers.projection.embedded import follow
from consumers.projection.kafka import KafkaProjector
from domain.personal_fields import PersonalData
from projections.catch_up import catch_up
from projections.store import ReadModelStore
from service.application import LeadflowApp

__all__ = ["personal_data", "rebuild", "run_projector"]

log = structlog.get_logger("leadflow.consumers.projection_runner")

RebuildSource = Literal["store", "kafka"]
OpenStore = Callable[[], ReadModelStore]
OpenApp = Callable[[], LeadflowApp]
T = TypeVar("T")


def run_projector(
    open_store: OpenStore,
    open_app: OpenApp,
    options: ProjectorSettings,
    stop: ProcessStop,
    *,
    kafka: KafkaSettings | None = None,
    follow_log: bool = False,
    until_idle: bool = False,
) -> int:
    """Project into the live read model; the number of events applied.

    Embedded (no ``kafka``): catch up once, or with ``follow_log`` keep following the
    event store until ``stop``. Kafka mode: consume until ``stop`` or, with
    ``until_idle``, until the assigned partitions are consumed to their end.
    """
    if kafka is not None:
        app = _open_when_reachable(open_app, "event_store_unreachable", stop)
        if app is None:
            return 0
        try:
            store = _open_when_reachable(open_store, "read_model_unreachable", stop)
            if store is None:
                return 0
            with store:
                stats = KafkaProjector(kafka, store, options, personal_data(app)).run(
                    should_stop=stop, until_idle=until_idle
                )
        finally:
            app.close()
        return stats.applied
    with open_store() as store:
        app = open_app()
        try:
            if not follow_log:
                return catch_up(app, store, batch_size=options.batch_size)
            return follow(
                app,
                store,
                stop,
                interval_s=options.follow_interval_s,
                batch_size=options.batch_size,
            )
        finally:
            app.close()


def _open_when_reachable(open_it: Callable[[], T], event: str, stop: ProcessStop) -> T | None:
    """``open_it()``, retried with back-off while its PostgreSQL is unreachable (a
    long-running projector started during an outage waits for it); None when stopped."""
    return retry_while_unavailable(
        open_it,
        lambda error: isinstance(error, psycopg.OperationalError | StoreOperationalError),
        stop,
        on_retry=lambda error, delay: log.warning(event, error=error_text(error), retry_in_s=delay),
    )


def personal_data(app: LeadflowApp) -> PersonalData:
    """The application's seal, which opens the events topic's sealed personal fields."""
    if app.personal_data is None:
        msg = "the application has no personal data seal: the events topic cannot be read"
        raise ValueError(msg)
    return app.personal_data


def rebuild(
    open_store: OpenStore,
    open_app: OpenApp,
    options: ProjectorSettings,
    source: RebuildSource,
    *,
    kafka: KafkaSettings,
    max_seconds: float | None = None,
) -> int:
    """Drop the live read model and rebuild it from the event store or from offset zero
    of the events topic; the number of events applied. Stop running projectors first."""
    with open_store() as store:
        store.reset()
        log.info("rebuild_started", source=source, read_model=store.location)
        if source == "kafka":
            # A group of its own: every partition comes to this process, from offset zero.
            own_group = options.model_copy(
                update={"group_id": f"{options.group_id}.rebuild-{uuid4().hex[:8]}"}
            )
            app = open_app()
            try:
                stats = KafkaProjector(kafka, store, own_group, personal_data(app)).run(
                    max_seconds=max_seconds, until_idle=True
                )
            finally:
                app.close()
            return stats.applied
        app = open_app()
        try:
            return catch_up(app, store, batch_size=options.batch_size)
        finally:
            app.close()


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow",
        action="store_true",
        help="embedded mode: keep following the event store (Kafka mode always follows)",
    )
    parser.add_argument(
        "--max-seconds", type=float, metavar="N", help="stop after N seconds (default: never)"
    )
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="Kafka mode: stop once every assigned partition is consumed to its end",
    )
