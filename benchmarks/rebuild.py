"""``rebuild``: events per second replaying the event store into all read models.

Per store kind (SQLite, PostgreSQL), an event store is filled once per run with lead
lifecycles (``events`` events: captures, engagements, scores, contacts, MQL, SAL, SQL,
deals opened, moved and won, so every read model gets work). Each round starts from an
empty read model of the same kind (a SQLite file, a PostgreSQL schema;
``ReadModelStore.reset``, untimed) and replays the whole store with
``projections.catch_up.catch_up``, what ``leadflow rebuild --from-store`` runs, in steps
of ``step`` notifications (``catch_up(..., until=...)``).

The baseline reads and decodes the same notifications with no projection
(``select_notifications`` in pages of ``batch_size`` and ``envelope_from_notification``).
Leadflow and the baseline take turns step by step, so both see the same machine
conditions. The warm-up replays only the first step. Target: ratio >= 0.8; and the row
``rebuild.events_per_s``, the same figures alone: >= 50,000 events/s.

``rebuild.privacy``: the same rebuild against a replay of the same events into a second
empty read model with the mapper opening no sealed personal field (each stays a
``[sealed]`` marker): the cost of looking up each lead's data key and decrypting.
"""

from __future__ import annotations

from typing import cast

from adapters.event_envelope import envelope_from_notification
from adapters.mapper import PydanticMapper
from benchmarks.event_fill import fill_store
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Step,
    Target,
    paired_rounds,
)
from benchmarks.stores import fresh_store, opened
from leadflow.bootstrap import open_read_model
from projections.catch_up import catch_up
from projections.store import ReadModelStore
from service.application import LeadflowApp

TARGET = Target(on="ratio", at_least=0.8)
SPEED_TARGET = Target(on="value", at_least=50_000)

PARAMS = (
    Param("events", quick=10_000, full=1_000_000, help="events in the store replayed"),
    Param("step", quick=2_000, full=50_000, help="notifications per alternating step"),
    Param("batch_size", quick=1_000, full=1_000, help="notifications per read-model transaction"),
)


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    step, batch_size = ctx.int_param("step"), ctx.int_param("batch_size")
    with (
        fresh_store(ctx, kind, "rebuild") as settings,
        fresh_store(ctx, kind, "rebuild_unopened") as other,
        opened(settings) as app,
    ):
        stored = fill_store(app, ctx.int_param("events"), "rebuild")
        last = app.recorder.max_notification_id() or 0
        bounds = [(start, min(start + step, last)) for start in range(0, last, step)]
        with open_read_model(settings) as store, open_read_model(other) as unopened:

            def round_steps(number: int) -> dict[str, list[Step]]:
                store.reset()
                unopened.reset()
                chunks = bounds[:1] if number < 0 else bounds
                return {
                    "rebuild": [_replay(app, store, b, batch_size) for b in chunks],
                    "unopened": [
                        _unopened(_replay(app, unopened, b, batch_size), app) for b in chunks
                    ],
                    "decode": [_decode(app, b, batch_size) for b in chunks],
                }

            figures = paired_rounds(ctx.rounds, round_steps, benchmark="rebuild", store=kind)
            replayed = store.last_notification_id()
    if replayed != last:
        msg = f"the rebuild stopped at notification {replayed} of {last}"
        raise BenchmarkError(msg)
    details = {"events": stored, "step": step, "batch_size": batch_size}
    rebuilt = Series(
        f"catch_up into an empty {kind} read model: {stored} events",
        "events/s",
        figures["rebuild"],
    )
    return [
        Result(
            benchmark="rebuild",
            name="rebuild.from_store",
            store=kind,
            measured=rebuilt,
            baseline=Series(
                "select_notifications + envelope_from_notification, no projection",
                "events/s",
                figures["decode"],
            ),
            higher_is_better=True,
            target=TARGET,
            details=details,
        ),
        Result(
            benchmark="rebuild",
            name="rebuild.events_per_s",
            store=kind,
            measured=rebuilt,
            baseline=None,
            higher_is_better=True,
            target=SPEED_TARGET,
            details=details,
        ),
        Result(
            benchmark="rebuild",
            name="rebuild.privacy",
            store=kind,
            measured=Series(
                "catch_up, sealed personal fields opened with each lead's data key "
                "(the rebuild.from_store figures)",
                "events/s",
                figures["rebuild"],
            ),
            baseline=Series(
                f"catch_up of the same events into another empty {kind} read model with "
                "the personal fields left sealed (no key look-up, no decryption)",
                "events/s",
                figures["unopened"],
            ),
            higher_is_better=True,
            details=details,
        ),
    ]


def _replay(
    app: LeadflowApp, store: ReadModelStore, bounds: tuple[int, int], batch_size: int
) -> Step:
    start, stop = bounds

    def step() -> int:
        if store.last_notification_id() != start:
            msg = f"the read model is at notification {store.last_notification_id()}, not {start}"
            raise BenchmarkError(msg)
        applied = catch_up(app, store, batch_size=batch_size, until=stop)
        if applied != stop - start:
            msg = f"catch_up applied {applied} events of notifications {start + 1}..{stop}"
            raise BenchmarkError(msg)
        return applied

    return step


def _unopened(replay: Step, app: LeadflowApp) -> Step:
    """``replay`` with the mapper opening nothing meanwhile (privacy's reading cost off)."""
    mapper = cast(PydanticMapper, app.mapper)
    personal = mapper.personal

    def step() -> int:
        assert personal is not None, "every application opens personal fields"
        mapper.personal = None
        try:
            return replay()
        finally:
            mapper.personal = personal

    return step


def _decode(app: LeadflowApp, bounds: tuple[int, int], batch_size: int) -> Step:
    start, stop = bounds
    mapper = cast(PydanticMapper, app.mapper)

    def step() -> int:
        decoded, after = 0, start
        while after < stop:
            notifications = app.recorder.select_notifications(
                start=after, limit=min(batch_size, stop - after), inclusive_of_start=False
            )
            if not notifications:
                break
            for notification in notifications:
                envelope_from_notification(mapper, notification)
            decoded += len(notifications)
            after = notifications[-1].id
        return decoded

    return step


BENCHMARK = Benchmark(
    name="rebuild",
    summary="events/s replaying the event store into all read models vs reading + decoding",
    run=run,
    params=PARAMS,
)
