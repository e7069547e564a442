"""``commands``: lead and deal commands per second through the application.

Two paths, each against its own floor on the same recorder:

- ``commands.handle``: ``app.handle(cmd)``, one command per transaction (an interactive
  caller), versus the floor saving one minimal event per transaction;
- ``commands.handle_many``: ``app.handle_many(batch)`` (import, demo), versus the floor
  saving the same number of minimal events per transaction.

The workload is whole lead lifecycles (capture, engagement, contact, MQL, SAL, SQL, deal
opened, moved, won): 9 commands and about 12 events each. The floor's events are padded
to the mean stored size of the workload's events. Target: ratio >= 0.5.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

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
    per_second,
    stopwatch,
)
from benchmarks.stores import fresh_store, opened
from benchmarks.workload import COMMANDS_PER_LIFECYCLE, lifecycle_commands
from domain.application import LeadflowApp, Outcome
from domain.errors import DomainError
from leadflow.event_store import event_store_env

TARGET = Target(on="ratio", at_least=0.5)
FLOOR_AGGREGATES = 64

PARAMS = (
    Param("single", quick=180, full=1800, help="commands sent with app.handle, per round"),
    Param("batched", quick=1500, full=15000, help="commands sent with app.handle_many, per round"),
    Param("batch_size", quick=500, full=500, help="commands per handle_many call"),
)


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    single, batched = ctx.int_param("single"), ctx.int_param("batched")
    batch_size = ctx.int_param("batch_size")
    with fresh_store(ctx, kind, "commands") as settings, opened(settings) as app:
        floor = FloorApp(event_store_env(settings), recorder=app.recorder)
        try:
            event_bytes = _mean_event_bytes(app)
            text = floor.padding_for(event_bytes)
            events: dict[str, list[float]] = {"single": [], "batched": []}

            def send_singly(number: int) -> float:
                commands = lifecycle_commands(f"s{number}", single)
                with stopwatch() as watch:
                    outcomes = [app.handle(command) for command in commands]
                events["single"].append(_events_per_command(outcomes))
                return per_second(single, watch.seconds)

            def send_batched(number: int) -> float:
                commands = lifecycle_commands(f"b{number}", batched)
                chunks = [commands[i : i + batch_size] for i in range(0, batched, batch_size)]
                with stopwatch() as watch:
                    outcomes = [r for chunk in chunks for r in app.handle_many(chunk)]
                events["batched"].append(_events_per_command(_refusals_raised(outcomes)))
                return per_second(batched, watch.seconds)

            figures = interleaved_rounds(
                ctx.rounds,
                {
                    "floor_single": _floor_probe(floor, text, single, 1),
                    "handle": send_singly,
                    "floor_batched": _floor_probe(floor, text, batched, batch_size),
                    "handle_many": send_batched,
                },
                benchmark="commands",
                store=kind,
            )
        finally:
            floor.close()
    details = {"event_bytes": event_bytes, "commands_per_lifecycle": COMMANDS_PER_LIFECYCLE}
    return [
        Result(
            benchmark="commands",
            name="commands.handle",
            store=kind,
            measured=Series(
                "app.handle: 1 command per transaction", "commands/s", figures["handle"]
            ),
            baseline=Series(
                "eventsourcing floor: 1 minimal event per transaction, same recorder",
                "events/s",
                figures["floor_single"],
            ),
            higher_is_better=True,
            target=TARGET,
            details={
                **details,
                "commands_per_round": single,
                "events_per_command": statistics.median(events["single"]),
            },
        ),
        Result(
            benchmark="commands",
            name="commands.handle_many",
            store=kind,
            measured=Series(
                f"app.handle_many: {batch_size} commands per transaction",
                "commands/s",
                figures["handle_many"],
            ),
            baseline=Series(
                f"eventsourcing floor: {batch_size} minimal events per transaction, same recorder",
                "events/s",
                figures["floor_batched"],
            ),
            higher_is_better=True,
            target=TARGET,
            details={
                **details,
                "commands_per_round": batched,
                "batch_size": batch_size,
                "events_per_command": statistics.median(events["batched"]),
            },
        ),
    ]


def _floor_probe(floor: FloorApp, text: str, count: int, per_save: int) -> Callable[[int], float]:
    """Save ``count`` Noted events, ``per_save`` (one per aggregate) in each transaction."""

    def probe(_: int) -> float:
        notes = [Note(text) for _ in range(max(per_save, FLOOR_AGGREGATES))]
        floor.save(*notes)
        groups = [notes[i : i + per_save] for i in range(0, len(notes), per_save)]
        saved = 0
        with stopwatch() as watch:
            while saved < count:
                group = groups[(saved // per_save) % len(groups)][: count - saved]
                for note in group:
                    note.note(text)
                floor.save(*group)
                saved += len(group)
        return per_second(count, watch.seconds)

    return probe


def _mean_event_bytes(app: LeadflowApp) -> int:
    """Mean stored size of the workload's events (one lifecycle, saved untimed)."""
    start = app.recorder.max_notification_id() or 0
    _refusals_raised(app.handle_many(lifecycle_commands("size", COMMANDS_PER_LIFECYCLE)))
    stored = app.recorder.select_notifications(start, 1000, inclusive_of_start=False)
    return round(statistics.mean(len(n.state) for n in stored))


def _refusals_raised(outcomes: Sequence[Outcome | DomainError]) -> list[Outcome]:
    """The outcomes; a refused command means the workload is wrong, not slow."""
    for outcome in outcomes:
        if isinstance(outcome, DomainError):
            msg = f"the benchmark workload was refused: {outcome}"
            raise BenchmarkError(msg)
    return [o for o in outcomes if isinstance(o, Outcome)]


def _events_per_command(outcomes: Sequence[Outcome]) -> float:
    return sum(o.events for o in outcomes) / max(1, len(outcomes))


BENCHMARK = Benchmark(
    name="commands",
    summary="commands/s through app.handle and app.handle_many vs the bare eventsourcing floor",
    run=run,
    params=PARAMS,
)
