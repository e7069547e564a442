"""Run the projectors: embedded (follow the event store in-process) or Kafka mode
(consume ``leadflow.events.v1`` in consumer group ``leadflow.projector``), and rebuild.
SIGTERM (or Ctrl-C) stops a run after the batch in hand is committed.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Literal
from uuid import uuid4

import psycopg
import structlog

from adapters.logging import error_text
from adapters.projector_settings import ProjectorSettings
from adapters.retrying import retry_while_unavailable
from adapters.settings import Settings
from consumers.projection.embedded import follow
from consumers.projection.kafka import KafkaProjector
from domain.stage_model import load_stage_model
from projections.catch_up import catch_up
from projections.store import ReadModelStore, open_read_model_store
from service.application import LeadflowApp

__all__ = ["open_live_store", "rebuild", "run_projector"]

log = structlog.get_logger("leadflow.consumers.projection_runner")

RebuildSource = Literal["store", "kafka"]


def open_live_store(settings: Settings) -> ReadModelStore:
    return open_read_model_store(settings, load_stage_model(settings.stage_model_file))


class _StopFlag:
    def __init__(self) -> None:
        self.raised = False

    def __call__(self) -> bool:
        return self.raised


@contextmanager
def _stop_on_signals() -> Iterator[_StopFlag]:
    """SIGTERM and SIGINT ask the loop to stop after the batch in hand."""
    flag = _StopFlag()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        flag.raised = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run_projector(
    settings: Settings,
    open_app: Callable[[], LeadflowApp],
    *,
    follow_log: bool = False,
    max_seconds: float | None = None,
    until_idle: bool = False,
    options: ProjectorSettings | None = None,
) -> int:
    """Project into the live read model; the number of events applied.

    Embedded: catch up once, or with ``follow_log`` keep following the event store.
    Kafka mode: consume until a signal, ``max_seconds`` or, with ``until_idle``, until
    the assigned partitions are consumed to their end.
    """
    options = options or ProjectorSettings()
    if settings.kafka_mode:
        with _stop_on_signals() as stop:
            deadline = _Deadline(max_seconds)
            store = _open_when_reachable(settings, lambda: stop() or deadline.passed())
            if store is None:
                return 0
            with store:
                stats = KafkaProjector(settings.kafka, store, options).run(
                    should_stop=lambda: stop() or deadline.passed(), until_idle=until_idle
                )
            return stats.applied
    with open_live_store(settings) as store:
        app = open_app()
        try:
            if not follow_log:
                return catch_up(app, store, batch_size=options.batch_size)
            with _stop_on_signals() as stop:
                deadline = _Deadline(max_seconds)
                return follow(
                    app,
                    store,
                    lambda: stop() or deadline.passed(),
                    interval_s=options.follow_interval_s,
                    batch_size=options.batch_size,
                )
        finally:
            app.close()


def _open_when_reachable(settings: Settings, stopping: Callable[[], bool]) -> ReadModelStore | None:
    """The live read model, retried with back-off while its PostgreSQL is unreachable (a
    long-running projector started during an outage waits for it); None when stopped."""
    return retry_while_unavailable(
        lambda: open_live_store(settings),
        lambda error: isinstance(error, psycopg.OperationalError),
        stopping,
        on_retry=lambda error, delay: log.warning(
            "read_model_unreachable", error=error_text(error), retry_in_s=delay
        ),
    )


def rebuild(
    settings: Settings,
    open_app: Callable[[], LeadflowApp],
    source: RebuildSource,
    *,
    max_seconds: float | None = None,
    options: ProjectorSettings | None = None,
) -> int:
    """Drop the live read model and rebuild it from the event store or from offset zero
    of the events topic; the number of events applied. Stop running projectors first."""
    options = options or ProjectorSettings()
    with open_live_store(settings) as store:
        store.reset()
        log.info("rebuild_started", source=source, read_model=store.location)
        if source == "kafka":
            # A group of its own: every partition comes to this process, from offset zero.
            own_group = options.model_copy(
                update={"group_id": f"{options.group_id}.rebuild-{uuid4().hex[:8]}"}
            )
            stats = KafkaProjector(settings.kafka, store, own_group).run(
                max_seconds=max_seconds, until_idle=True
            )
            return stats.applied
        app = open_app()
        try:
            return catch_up(app, store, batch_size=options.batch_size)
        finally:
            app.close()


class _Deadline:
    def __init__(self, seconds: float | None) -> None:
        self._at = None if seconds is None else time.monotonic() + seconds

    def passed(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at


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
