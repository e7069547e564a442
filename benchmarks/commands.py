"""``commands``: lead and deal commands per second through the application.

Two paths, each against its own floor on the same recorder:

- ``commands.handle``: ``app.handle(cmd)``, one command per transaction (an interactive
  caller), versus the floor saving one minimal event per transaction;
- ``commands.handle_many``: ``app.handle_many(batch)`` (import, demo), versus the floor
  saving as many minimal events per transaction as the batch has commands;
- ``commands.handle_signed``: ``app.handle(cmd)`` with the signed log on (each
  transaction's head signed and appended to a witness file), versus ``commands.handle``
  (signing off) on the same app: the cost of signing;
- ``commands.handle_privacy``: ``commands.handle`` (personal fields sealed under each
  lead's data key, as always), versus the same commands on the same app with sealing off
  (stored plain): the cost of per-lead encryption.

The workload is whole lead lifecycles (capture, engagement, contact, MQL, SAL, SQL, deal
opened, moved, won): 9 commands and about 12 events each. The floor's events are padded
to the mean stored size of the workload's events. Leadflow and the floor take turns in
small steps (45 commands, or one batch), so both see the same machine conditions.
Target: ratio >= 0.6 (issue 15, second wave).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from uuid import uuid4

from adapters.audit_keys import generate_key_pair
from adapters.audit_log import AuditConfig
from adapters.audit_witness import FileWitness
from adapters.command_ledger import attach_audit
from adapters.event_store import event_store_env
from benchmarks.floor import FloorApp, Note
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
from benchmarks.workload import COMMANDS_PER_LIFECYCLE, lifecycle_commands
from domain import commands as c
from domain.errors import DomainError
from service.application import LeadflowApp
from service.unit_of_work import Outcome

TARGET = Target(on="ratio", at_least=0.6)
FLOOR_AGGREGATES = 64
SINGLE_STEP = 5 * COMMANDS_PER_LIFECYCLE

PARAMS = (
    Param("single", quick=180, full=1800, help="commands sent with app.handle, per round"),
    Param("batched", quick=1500, full=15000, help="commands sent with app.handle_many, per round"),
    Param("batch_size", quick=500, full=500, help="commands per handle_many call"),
)


class EventCounter:
    """Events per command, over the commands sent (for the report's details)."""

    def __init__(self) -> None:
        self.commands = 0
        self.events = 0

    def add(self, outcomes: Sequence[Outcome | DomainError]) -> int:
        for outcome in outcomes:
            if isinstance(outcome, DomainError):
                msg = f"the benchmark workload was refused: {outcome}"
                raise BenchmarkError(msg)
            self.events += outcome.events
        self.commands += len(outcomes)
        return len(outcomes)

    @property
    def per_command(self) -> float:
        return self.events / max(1, self.commands)


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    single, batched = ctx.int_param("single"), ctx.int_param("batched")
    batch_size = ctx.int_param("batch_size")
    counters = {name: EventCounter() for name in ("single", "batched", "signed", "plain")}
    with fresh_store(ctx, kind, "commands") as settings, opened(settings) as app:
        audit = _signing(ctx.work_dir / f"audit_{uuid4().hex[:10]}")
        floor = FloorApp(event_store_env(settings.store), recorder=app.recorder)
        try:
            event_bytes = _mean_event_bytes(app)
            text = floor.padding_for(event_bytes)

            def round_steps(number: int) -> dict[str, list[Step]]:
                one_by_one = _chunks(lifecycle_commands(f"s{number}", single), SINGLE_STEP)
                in_batches = _chunks(lifecycle_commands(f"b{number}", batched), batch_size)
                return {
                    "floor_single": _floor_steps(floor, text, [len(c) for c in one_by_one], 1),
                    "handle": [_handle_step(app, c, counters["single"]) for c in one_by_one],
                    "handle_signed": [
                        _signed_step(app, c, counters["signed"], audit)
                        for c in _chunks(lifecycle_commands(f"g{number}", single), SINGLE_STEP)
                    ],
                    "handle_plain": [
                        _plain_step(app, c, counters["plain"])
                        for c in _chunks(lifecycle_commands(f"p{number}", single), SINGLE_STEP)
                    ],
                    "floor_batched": _floor_steps(
                        floor, text, [len(c) for c in in_batches], batch_size
                    ),
                    "handle_many": [
                        _handle_many_step(app, c, counters["batched"]) for c in in_batches
                    ],
                }

            figures = paired_rounds(ctx.rounds, round_steps, benchmark="commands", store=kind)
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
                "events_per_command": round(counters["single"].per_command, 3),
            },
        ),
        Result(
            benchmark="commands",
            name="commands.handle_signed",
            store=kind,
            measured=Series(
                "app.handle with LEADFLOW_AUDIT_KEY_FILE and a witness file: each transaction's "
                "head signed (Ed25519) and appended to the witness",
                "commands/s",
                figures["handle_signed"],
            ),
            baseline=Series(
                "app.handle without signing (the commands.handle figures), same app",
                "commands/s",
                figures["handle"],
            ),
            higher_is_better=True,
            details={
                **details,
                "commands_per_round": single,
                "events_per_command": round(counters["signed"].per_command, 3),
            },
        ),
        Result(
            benchmark="commands",
            name="commands.handle_privacy",
            store=kind,
            measured=Series(
                "app.handle, personal fields sealed under each lead's data key (the "
                "commands.handle figures)",
                "commands/s",
                figures["handle"],
            ),
            baseline=Series(
                "app.handle with sealing off (personal fields stored plain), same app",
                "commands/s",
                figures["handle_plain"],
            ),
            higher_is_better=True,
            details={
                **details,
                "commands_per_round": single,
                "events_per_command": round(counters["plain"].per_command, 3),
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
                "events_per_command": round(counters["batched"].per_command, 3),
            },
        ),
    ]


def _chunks(commands: list[c.Command], size: int) -> list[list[c.Command]]:
    return [commands[i : i + size] for i in range(0, len(commands), size)]


def _handle_step(app: LeadflowApp, commands: list[c.Command], counter: EventCounter) -> Step:
    return lambda: counter.add([app.handle(command) for command in commands])


def _signing(directory: Path) -> AuditConfig:
    """A new audit key and a witness file in ``directory`` (outside the store)."""
    directory.mkdir(parents=True)
    key = generate_key_pair(directory / "audit.pem")
    return AuditConfig(key, FileWitness(directory / "witness.jsonl"))


def _signed_step(
    app: LeadflowApp, commands: list[c.Command], counter: EventCounter, audit: AuditConfig
) -> Step:
    """``_handle_step`` with the recorder signing and witnessing heads meanwhile."""

    def step() -> int:
        attach_audit(app.recorder, audit)
        try:
            return counter.add([app.handle(command) for command in commands])
        finally:
            attach_audit(app.recorder, AuditConfig())

    return step


def _plain_step(app: LeadflowApp, commands: list[c.Command], counter: EventCounter) -> Step:
    """``_handle_step`` with personal fields stored plain meanwhile (sealing off)."""
    sealing = app.personal_data

    def step() -> int:
        assert sealing is not None, "every application seals personal fields"
        app.personal_data = None
        try:
            return counter.add([app.handle(command) for command in commands])
        finally:
            app.personal_data = sealing

    return step


def _handle_many_step(app: LeadflowApp, commands: list[c.Command], counter: EventCounter) -> Step:
    return lambda: counter.add(app.handle_many(commands))


def _floor_steps(floor: FloorApp, text: str, sizes: list[int], per_save: int) -> list[Step]:
    """Steps saving ``sizes[i]`` Noted events each, ``per_save`` (one per aggregate) at a time.

    The aggregates are created and saved now, untimed; the steps only record new events.
    """
    notes = [Note(text) for _ in range(max(per_save, FLOOR_AGGREGATES))]
    floor.save(*notes)
    groups = [notes[i : i + per_save] for i in range(0, len(notes), per_save)]
    turn = itertools.count()

    def step(size: int) -> int:
        saved = 0
        while saved < size:
            group = groups[next(turn) % len(groups)][: size - saved]
            for note in group:
                note.note(text)
            floor.save(*group)
            saved += len(group)
        return saved

    return [_bind(step, size) for size in sizes]


def _bind(step: Callable[[int], int], size: int) -> Step:
    return lambda: step(size)


def _mean_event_bytes(app: LeadflowApp) -> int:
    """Mean stored size of the workload's events (one lifecycle, saved untimed)."""
    start = app.recorder.max_notification_id() or 0
    EventCounter().add(app.handle_many(lifecycle_commands("size", COMMANDS_PER_LIFECYCLE)))
    stored = app.recorder.select_notifications(start, 1000, inclusive_of_start=False)
    return round(statistics.mean(len(n.state) for n in stored))


BENCHMARK = Benchmark(
    name="commands",
    summary="commands/s through app.handle and app.handle_many vs the bare eventsourcing floor",
    run=run,
    params=PARAMS,
)
