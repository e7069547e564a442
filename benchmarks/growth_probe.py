"""One phase of the ``growth`` benchmark, run in a process of its own so its peak RSS is its own.

``write`` sends lead lifecycles through ``handle_many`` until at least the given number
of events is stored; ``engage`` sends engagements to a few busy leads, each with its own
command id and ``event_id`` as the ingest's are, then measures a busy lead's snapshot and
load time; ``read`` streams the whole notification log in pages and decodes
every event, as the relay and the embedded projector do. Each first does one untimed
batch (or page), so that one-off costs (first queries, validator set-up) are not
counted as per-event cost. The process is forked from a forkserver that has imported
this module, so imports cost neither time nor a different memory baseline.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator
from datetime import timedelta
from itertools import islice
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from adapters.event_envelope import envelope_from_notification
from adapters.logging import configure_logging
from adapters.mapper import PydanticMapper
from adapters.settings import Settings
from benchmarks.framework import stopwatch
from benchmarks.workload import EPOCH, lifecycle_stream
from domain import commands as c
from domain.commands import Command
from domain.errors import DomainError
from leadflow.bootstrap import open_application
from service.application import LeadflowApp

_STATUS = Path("/proc/self/status")


def rss_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in KiB."""
    found = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if found is None:
        msg = f"{_STATUS} has no {field} line; the growth benchmark needs Linux"
        raise RuntimeError(msg)
    return int(found.group(1))


def write(app: LeadflowApp, events: int, batch_size: int) -> tuple[int, float]:
    """Events written (timed ones, at least ``events``) and the seconds they took."""
    _handle(app, list(islice(lifecycle_stream("warmup"), batch_size)))
    stream = lifecycle_stream("growth")
    written = 0
    with stopwatch() as watch:
        while written < events:
            written += _handle(app, list(islice(stream, batch_size)))
    return written, watch.seconds


def _handle(app: LeadflowApp, commands: list[Command]) -> int:
    written = 0
    for outcome in app.handle_many(commands):
        if isinstance(outcome, DomainError):
            msg = f"the benchmark workload was refused: {outcome}"
            raise RuntimeError(msg)
        written += outcome.events
    return written


def read(app: LeadflowApp, page_size: int) -> tuple[int, float]:
    """Events streamed and decoded (the whole log) and the seconds that took."""
    mapper = cast(PydanticMapper, app.mapper)
    for notification in app.recorder.select_notifications(start=1, limit=page_size):
        envelope_from_notification(mapper, notification)
    position, decoded = 0, 0
    with stopwatch() as watch:
        while True:
            page = app.recorder.select_notifications(
                start=position, limit=page_size, inclusive_of_start=False
            )
            for notification in page:
                envelope_from_notification(mapper, notification)
            decoded += len(page)
            if len(page) < page_size:
                break
            position = page[-1].id
    return decoded, watch.seconds


BUSY_LEADS = 10
_KINDS = ("page_view", "email_open", "email_click", "webinar_attended", "content_download")
LOAD_SAMPLES = 21


def engagement_stream(run: str) -> Iterator[c.Command]:
    """The captures of ``BUSY_LEADS`` leads, then engagements shared out among them without
    end, each with its own id (the ingest's record origin) and its own ``event_id``."""
    for lead in range(BUSY_LEADS):
        yield c.CaptureLead(lead=_busy_lead(run, lead), source="web_form", occurred_at=EPOCH)
    number = 0
    while True:
        record = f"{run}-{number}"
        yield c.RecordEngagement(
            lead=_busy_lead(run, number % BUSY_LEADS),
            event_id=record,
            kind=_KINDS[number % len(_KINDS)],
            occurred_at=EPOCH + timedelta(seconds=number),
            command_id=f"kafka:engagement/0/{number}/{record}",
        )
        number += 1


def _busy_lead(run: str, number: int) -> str:
    return f"busy-{run}-{number}@example.com"


def engage(app: LeadflowApp, events: int, batch_size: int) -> tuple[int, float]:
    """Events written by engagements that each carry their own id, and the seconds."""
    stream = engagement_stream("growth")
    _handle(app, list(islice(stream, batch_size)))  # untimed: captures and first batch
    written = 0
    with stopwatch() as watch:
        while written < events:
            written += _handle(app, list(islice(stream, batch_size)))
    return written, watch.seconds


def busiest_lead_figures(app: LeadflowApp) -> dict[str, Any]:
    """The latest snapshot of a busy lead (bytes) and how long loading it from the store
    takes (median of ``LOAD_SAMPLES`` loads, milliseconds)."""
    ref = _busy_lead("growth", 0)
    lead_id = app.resolve_lead(ref)
    assert app.snapshots is not None
    stored = app.snapshots.recorder.select_events(lead_id, desc=True, limit=1)
    app.get_lead(ref)  # untimed: first query
    seconds = []
    for _ in range(LOAD_SAMPLES):
        with stopwatch() as watch:
            lead = app.get_lead(ref)
        seconds.append(watch.seconds)
    return {
        "engagements": lead.engagements.count,
        "snapshot_bytes": len(stored[0].state) if stored else 0,
        "load_ms": statistics.median(seconds) * 1000,
    }


def probe(settings: Settings, phase: str, sizes: tuple[int, ...]) -> dict[str, Any]:
    """Run one phase on the store ``settings`` names; what it did, how long, how much RSS."""
    configure_logging("warning", "json")
    app = open_application(settings, default_actor="benchmark")
    try:
        figures: dict[str, Any] = {}
        if phase == "write":
            events, seconds = write(app, *sizes)
        elif phase == "engage":
            events, seconds = engage(app, *sizes)
            figures = busiest_lead_figures(app)
        elif phase == "read":
            events, seconds = read(app, *sizes)
        else:
            msg = f"unknown phase {phase!r}: expected write, engage or read"
            raise ValueError(msg)
        app_stored = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    return {
        "phase": phase,
        "events": events,
        "seconds": seconds,
        "stored": app_stored,
        "peak_rss_kib": rss_kib("VmHWM"),
        **figures,
    }


def run_child(
    connection: Connection, settings: Settings, phase: str, sizes: tuple[int, ...]
) -> None:
    """Entry point of the probe's process: the report (or the error) goes down ``connection``."""
    start_rss = rss_kib("VmRSS")
    try:
        connection.send({**probe(settings, phase, sizes), "start_rss_kib": start_rss})
    except Exception as error:  # noqa: BLE001 - the parent reports it, with the reason
        connection.send({"error": f"{type(error).__name__}: {error}"})
    finally:
        connection.close()
