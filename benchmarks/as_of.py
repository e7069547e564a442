"""``as_of``: does an as-of report cost the size of its answer, not of the history?

Per size (stored events) an event store is filled with lead lifecycles
(``benchmarks.workload``: lead n is captured n minutes after the epoch and won some hours
later) and its read model caught up (PostgreSQL: and analysed), untimed. Every round
then times, at each size in turn, ``kpis``, ``funnel`` and ``stalled`` as of a few
moments (what ``--as-of`` runs: ``past_read_model`` from the live read model's
business-time versions, then the report).
The moments lie within the captures of the smallest store, so every size gives the same
answer from a history up to 100 times longer.

Rows: the p50 of those queries per size, with the smallest size as baseline (ratio: how
the cost grows with the history); the replay of history (``read_model_as_of``, what
as-of did before) at the smallest size, as a same-run baseline. Targets: p50 under 500 ms
at the largest size, and at most 1.5 x the smallest size's. Result check: at the smallest
size every report equals the replay's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from benchmarks.event_fill import fill_store
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Target,
    log,
    stopwatch,
)
from benchmarks.stores import fresh_store, opened
from benchmarks.workload import EPOCH
from leadflow.bootstrap import open_read_model
from projections.catch_up import catch_up
from projections.reports import funnel_report, kpi_report, stalled_report
from projections.reports.as_of import past_read_model, read_model_as_of
from projections.schema import TABLES
from projections.store import ReadModelStore
from service.application import LeadflowApp

FAST = Target(on="value", at_most=500)
FLAT = Target(on="ratio", at_most=1.5)
MOMENT_FRACTIONS = (0.3, 0.6, 0.9)
"""Of the smallest store's captures: lead n is captured n minutes after the epoch."""

PARAMS = (
    Param(
        "sizes",
        quick=(1_000, 10_000),
        full=(10_000, 100_000, 1_000_000),
        help="stored events at each size",
    ),
)

Report = Callable[[ReadModelStore, datetime], Any]
REPORTS: dict[str, Report] = {
    "kpis": lambda store, at: kpi_report(store),
    "funnel": lambda store, at: funnel_report(store),
    "stalled": stalled_report,
}
Build = Callable[[LeadflowApp, datetime, ReadModelStore], ReadModelStore]


@dataclass(frozen=True)
class _Store:
    size: int
    stored: int
    app: LeadflowApp
    live: ReadModelStore


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    sizes = sorted(ctx.ints_param("sizes"))
    with ExitStack() as stack:
        stores = [stack.enter_context(_filled(ctx, size)) for size in sizes]
        smallest = stores[0]
        moments = _moments(smallest.live)
        _check(smallest, moments)
        per_size: dict[int, list[float]] = {s.size: [] for s in stores}
        replay: list[float] = []
        for number in range(-1, ctx.rounds):
            for store in stores:
                figure = _p50(store, moments, past_read_model)
                if number >= 0:
                    per_size[store.size].append(figure)
                log.info("round", benchmark="as_of", store=kind, size=store.size, p50_ms=figure)
            figure = _p50(smallest, moments, _replayed)
            if number >= 0:
                replay.append(figure)
            log.info("round", benchmark="as_of", store=kind, replay_p50_ms=figure)
    return _rows(kind, stores, per_size, replay, moments)


@contextmanager
def _filled(ctx: BenchContext, size: int) -> Iterator[_Store]:
    with (
        fresh_store(ctx, ctx.store_kind, f"as_of_{size}") as settings,
        opened(settings) as app,
        open_read_model(settings) as live,
    ):
        stored = fill_store(app, size, f"as-of-{size}")
        catch_up(app, live)
        if live.dialect.name == "postgresql":
            _analyze(live)
        yield _Store(size, stored, app, live)


def _analyze(live: ReadModelStore) -> None:
    """Planner statistics for the freshly filled tables, as autovacuum gathers them once a
    table has grown by a tenth: without them PostgreSQL scans the version tables whole."""
    names = ", ".join(table.name for table in TABLES)
    live.write(lambda tx: tx.execute(f"ANALYZE {names}"))


def _moments(live: ReadModelStore) -> list[datetime]:
    with live.read() as tx:
        leads = int(tx.execute("SELECT COUNT(*) FROM rm_leads")[0][0])
    return [EPOCH + timedelta(minutes=round(leads * f)) for f in MOMENT_FRACTIONS]


def _replayed(app: LeadflowApp, at: datetime, live: ReadModelStore) -> ReadModelStore:
    return read_model_as_of(app, at)


def _p50(store: _Store, moments: list[datetime], build: Build) -> float:
    """Median milliseconds of one as-of report, over the moments and the reports."""
    figures = []
    for at in moments:
        for report in REPORTS.values():
            with stopwatch() as watch, build(store.app, at, store.live) as past:
                report(past, at)
            figures.append(watch.seconds * 1000)
    return statistics.median(figures)


def _check(store: _Store, moments: list[datetime]) -> None:
    for at in moments:
        for name, report in REPORTS.items():
            with past_read_model(store.app, at, store.live) as past:
                ours = report(past, at)
            with read_model_as_of(store.app, at) as replayed:
                theirs = report(replayed, at)
            if ours != theirs:
                msg = f"as-of {name} at {at.isoformat()} differs from the replay of history"
                raise BenchmarkError(msg)


def _rows(
    kind: str,
    stores: list[_Store],
    per_size: dict[int, list[float]],
    replay: list[float],
    moments: list[datetime],
) -> list[Result]:
    smallest, largest = stores[0], stores[-1]
    at = ", ".join(m.strftime("%H:%M") for m in moments)
    what = f"kpis / funnel / stalled as of {at} on {EPOCH:%Y-%m-%d}"

    def series(store: _Store) -> Series:
        return Series(f"p50 {what}, {store.stored:,} events stored", "ms", per_size[store.size])

    baseline = series(smallest)
    baseline.description = f"same, at the smallest size ({smallest.stored:,} events)"
    rows = [
        Result(
            benchmark="as_of",
            name=f"as_of.p50 n={store.size:,}",
            store=kind,
            measured=series(store),
            baseline=baseline if store is not smallest else None,
            higher_is_better=False,
            target=FLAT if store is largest and store is not smallest else None,
            details={"events": store.stored, "moments": [m.isoformat() for m in moments]},
        )
        for store in stores
    ]
    rows.append(
        Result(
            benchmark="as_of",
            name=f"as_of.p50_largest n={largest.size:,}",
            store=kind,
            measured=series(largest),
            baseline=None,
            higher_is_better=False,
            target=FAST,
        )
    )
    rows.append(
        Result(
            benchmark="as_of",
            name=f"as_of.replay n={smallest.size:,}",
            store=kind,
            measured=Series(
                f"p50 {what} by replaying history, {smallest.stored:,} events", "ms", replay
            ),
            baseline=Series("p50 from the versions, same store", "ms", per_size[smallest.size]),
            higher_is_better=False,
            details={"ratio": "replay / versions: the speed-up at the smallest size"},
        )
    )
    return rows


BENCHMARK = Benchmark(
    name="as_of",
    summary="p50 of kpis / funnel / stalled --as-of at 10^4..10^6 stored events, from the "
    "business-time versions; the replay of history as baseline",
    run=run,
    params=PARAMS,
)
