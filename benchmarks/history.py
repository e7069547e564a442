"""``history``: time to load one lead with a long history, with and without snapshots.

The lead gets ``events`` events (capture, then contacts logged in batches through
``handle_many``) while the application snapshots every ``snapshot_interval`` versions.
Each load runs on a freshly opened application, so no aggregate cache helps; before the
clock starts, that application loads another, short-lived lead (150 events, one
snapshot), so connection set-up and first-query costs are not counted. The baseline is
eventsourcing's own ``repository.get`` of a minimal aggregate with as many events of the
same stored size, snapshotted at the same interval (or not at all), in the same store.
The lead is written and loaded with an audit key, so its snapshots are sealed and used
without replay (an unsealed snapshot is proven by replaying its events: then the load
costs what ``history.load_full_replay`` measures). Target: with snapshots, under 20 ms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from uuid import UUID, uuid4

from adapters.audit_keys import generate_key_pair
from adapters.audit_log import AuditConfig
from adapters.command_ledger import attach_audit
from adapters.event_store import event_store_env
from adapters.settings import Settings
from benchmarks.floor import FloorApp, Note
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Target,
    interleaved_rounds,
    stopwatch,
)
from benchmarks.stores import fresh_store, opened, with_snapshot_interval
from benchmarks.workload import capture, contact_log
from service.application import LeadflowApp

LEAD = "long-history@bench.example"
WARMUP_LEAD = "short-history@bench.example"
WARMUP_EVENTS = 150
BUILD_BATCH = 500
TARGET_WITH_SNAPSHOTS = Target(on="value", at_most=20.0)

PARAMS = (
    Param("events", quick=5_000, full=10_000, help="events on the one lead"),
    Param("snapshot_interval", quick=100, full=100, help="versions between snapshots"),
)


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    events, interval = ctx.int_param("events"), ctx.int_param("snapshot_interval")
    key_dir = ctx.work_dir / f"history_key_{uuid4().hex[:10]}"
    key_dir.mkdir(parents=True)
    sealing = AuditConfig(generate_key_pair(key_dir / "audit.pem"))
    with fresh_store(ctx, kind, "history", snapshot_interval=interval) as settings:
        with opened(settings) as app:
            attach_audit(app.recorder, sealing)
            _build_lead(app, WARMUP_LEAD, WARMUP_EVENTS)
            with stopwatch() as build:
                _build_lead(app, LEAD, events)
            event_bytes = _last_event_bytes(app)
        env = event_store_env(settings.store)
        warmup_id = _build_note(env, WARMUP_EVENTS, interval, event_bytes)
        note_id = _build_note(env, events, interval, event_bytes)
        figures = interleaved_rounds(
            ctx.rounds,
            {
                "lead_snapshots": _lead_loader(settings, interval, events, sealing),
                "floor_snapshots": _note_loader(env, interval, (warmup_id, note_id), events),
                "lead_replay": _lead_loader(settings, 0, events, AuditConfig()),
                "floor_replay": _note_loader(env, 0, (warmup_id, note_id), events),
            },
            benchmark="history",
            store=kind,
        )
    details = {
        "events": events,
        "event_bytes": event_bytes,
        "build_events_per_second": round(events / build.seconds, 1),
    }
    return [
        Result(
            benchmark="history",
            name="history.load_with_snapshots",
            store=kind,
            measured=Series(
                f"app.get_lead, {events} events, sealed snapshot every {interval}, cold app",
                "ms",
                figures["lead_snapshots"],
            ),
            baseline=Series(
                f"eventsourcing repository.get, minimal aggregate, snapshot every {interval}",
                "ms",
                figures["floor_snapshots"],
            ),
            higher_is_better=False,
            target=TARGET_WITH_SNAPSHOTS,
            details={**details, "snapshot_interval": interval},
        ),
        Result(
            benchmark="history",
            name="history.load_full_replay",
            store=kind,
            measured=Series(
                f"app.get_lead, {events} events replayed, cold app", "ms", figures["lead_replay"]
            ),
            baseline=Series(
                "eventsourcing repository.get, minimal aggregate, no snapshots",
                "ms",
                figures["floor_replay"],
            ),
            higher_is_better=False,
            details={**details, "snapshot_interval": 0},
        ),
    ]


def _build_lead(app: LeadflowApp, lead: str, events: int) -> None:
    app.handle(capture(lead))
    version = app.get_lead(lead).version
    if version > events:
        msg = f"history.events={events} is smaller than a captured lead's {version} events"
        raise BenchmarkError(msg)
    while version < events:
        count = min(BUILD_BATCH, events - version)
        outcomes = app.handle_many(contact_log(lead, count, first_minute=version))
        refused = [o for o in outcomes if isinstance(o, Exception)]
        if refused:
            msg = f"the benchmark workload was refused: {refused[0]}"
            raise BenchmarkError(msg)
        version += count


def _last_event_bytes(app: LeadflowApp) -> int:
    (last,) = app.recorder.select_events(app.resolve_lead(LEAD), desc=True, limit=1)
    return len(last.state)


def _build_note(env: Mapping[str, str], events: int, interval: int, event_bytes: int) -> UUID:
    """A minimal aggregate with ``events`` events of ``event_bytes`` each, snapshotted alike."""
    floor = FloorApp(env, snapshot_interval=interval)
    try:
        text = floor.padding_for(event_bytes)
        note = Note(text)
        while note.version < events:
            for _ in range(min(BUILD_BATCH, events - note.version)):
                note.note(text)
            floor.save(note)
        return note.id
    finally:
        floor.close()


def _lead_loader(
    settings: Settings, interval: int, events: int, audit: AuditConfig
) -> Callable[[int], float]:
    def load(_: int) -> float:
        with opened(with_snapshot_interval(settings, interval)) as app:
            attach_audit(app.recorder, audit)
            app.get_lead(WARMUP_LEAD)
            with stopwatch() as watch:
                lead = app.get_lead(LEAD)
        _check_version("lead", lead.version, events)
        return watch.seconds * 1000

    return load


def _note_loader(
    env: Mapping[str, str], interval: int, ids: tuple[UUID, UUID], events: int
) -> Callable[[int], float]:
    warmup_id, note_id = ids

    def load(_: int) -> float:
        floor = FloorApp(env, snapshot_interval=interval)
        try:
            floor.repository.get(warmup_id)
            with stopwatch() as watch:
                note: Note = floor.repository.get(note_id)
        finally:
            floor.close()
        _check_version("minimal aggregate", note.version, events)
        return watch.seconds * 1000

    return load


def _check_version(what: str, version: int, events: int) -> None:
    if version != events:
        msg = f"the {what} loaded at version {version}, expected {events}"
        raise BenchmarkError(msg)


BENCHMARK = Benchmark(
    name="history",
    summary="ms to load one lead with 10,000 events, with and without snapshots",
    run=run,
    params=PARAMS,
)
