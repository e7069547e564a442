"""Run a generated quarter through commands → events → projectors, then report on it.

Embedded mode. The commands go through ``LeadflowApp.handle_many`` in business-time
order, a hundred per transaction: each is validated, applied on the state its
predecessors left and hash-chained exactly as ``handle`` does, but the batch costs one
commit instead of a hundred (per-command commits made the demo three times slower on a
busy disk). The projectors catch the read models up with the event store every few
thousand commands and at the end. The reports are the ones ``leadflow funnel`` / ``kpis``
/ ``stalled`` print, with "now" for the stalled list set to the end of the quarter.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict

from adapters.logging import error_kind
from adapters.settings import Settings
from domain import commands as c
from domain.errors import DomainError
from leadflow.demo.progress import Progress
from leadflow.demo.scenario import generate_quarter
from leadflow.demo.timeline import QUARTER_END, QUARTER_START
from leadflow.demo.workspace import DemoMarker, open_demo_stores, write_marker
from projections.catch_up import catch_up
from projections.reports import (
    FunnelReport,
    KpiReport,
    StalledReport,
    funnel_report,
    kpi_report,
    stalled_report,
)
from projections.store import ReadModelStore
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.demo")

BATCH = 100  # commands stored per transaction (``handle_many``), in business-time order
CATCH_UP_EVERY = 2500


class DemoSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    seed: int
    leads: int
    commands: int
    applied: int
    duplicates: int
    refused: int
    events: int
    quarter_start: datetime
    quarter_end: datetime
    stalled_as_of: datetime


class DemoResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    summary: DemoSummary
    funnel: FunnelReport
    kpis: KpiReport
    stalled: StalledReport

    def document(self) -> dict[str, Any]:
        """One JSON-ready document; the same for the same seed and size (no timings), but
        for the lead ids: random, each run's own (``service.indexed_ids``)."""
        return {
            "demo": self.summary.model_dump(mode="json"),
            "funnel": self.funnel.model_dump(mode="json"),
            "kpis": self.kpis.model_dump(mode="json"),
            "stalled": self.stalled.model_dump(mode="json"),
        }


@dataclass(slots=True)
class DemoTimings:
    generate_s: float = 0.0
    commands_s: float = 0.0
    projections_s: float = 0.0
    reports_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.generate_s + self.commands_s + self.projections_s + self.reports_s


@dataclass(slots=True)
class _Tally:
    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    leads: int = 0


def run_demo(
    settings: Settings,
    *,
    seed: int,
    leads: int,
    fresh: bool = False,
    progress: Progress | None = None,
    timings: DemoTimings | None = None,
) -> DemoResult:
    timings = timings if timings is not None else DemoTimings()
    app, store = open_demo_stores(settings, fresh)
    try:
        started = time.perf_counter()
        commands = generate_quarter(
            seed, leads, rules=app.scoring_rules, stage_model=app.stage_model
        )
        timings.generate_s = time.perf_counter() - started
        log.info("demo_generated", seed=seed, leads=leads, commands=len(commands))
        if progress is not None:
            progress.start(len(commands))
        tally = _apply(app, store, commands, progress, timings)
        events = app.recorder.max_notification_id() or 0
        write_marker(settings, DemoMarker(seed=seed, leads=leads, events=events))
        started = time.perf_counter()
        result = DemoResult(
            summary=DemoSummary(
                seed=seed,
                leads=leads,
                commands=len(commands),
                applied=tally.applied,
                duplicates=tally.duplicates,
                refused=tally.refused,
                events=events,
                quarter_start=QUARTER_START,
                quarter_end=QUARTER_END,
                stalled_as_of=QUARTER_END,
            ),
            funnel=funnel_report(store),
            kpis=kpi_report(store),
            stalled=stalled_report(store, QUARTER_END),
        )
        timings.reports_s = time.perf_counter() - started
    finally:
        store.close()
        app.close()
    log.info(
        "demo_finished",
        seed=seed,
        leads=leads,
        commands=len(commands),
        events=events,
        refused=tally.refused,
        seconds=round(timings.total_s, 2),
        commands_per_s=round(len(commands) / max(timings.commands_s, 1e-9)),
    )
    return result


def _apply(
    app: LeadflowApp,
    store: ReadModelStore,
    commands: list[c.Command],
    progress: Progress | None,
    timings: DemoTimings,
) -> _Tally:
    tally = _Tally()
    done = 0
    for first in range(0, len(commands), BATCH):
        batch = commands[first : first + BATCH]
        started = time.perf_counter()
        results = app.handle_many(batch)
        timings.commands_s += time.perf_counter() - started
        for command, result in zip(batch, results, strict=True):
            if isinstance(result, DomainError):
                tally.refused += 1
                log.warning(
                    "demo_command_refused",
                    command_id=command.command_id,
                    command=type(command).__name__,
                    **error_kind(result),
                )
            elif result.status == "applied":
                tally.applied += 1
            else:
                tally.duplicates += 1
            tally.leads += isinstance(command, c.CaptureLead)
        done += len(batch)
        if done % CATCH_UP_EVERY < BATCH or done == len(commands):
            started = time.perf_counter()
            with progress.suspended() if progress else nullcontext():
                catch_up(app, store)
            timings.projections_s += time.perf_counter() - started
        if progress is not None:
            progress.update(done, f"{tally.leads:,} leads")
    return tally
