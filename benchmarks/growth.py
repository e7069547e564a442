"""``growth``: does the cost per event stay flat, and memory bounded, as the store grows?

For each size (stored events) and round, a fresh store is filled by one process (lead
lifecycles through ``handle_many``) and then streamed back by another (the whole
notification log in pages, every event decoded, as the relay and the embedded projector
do). Each process reports its time and its peak RSS (``VmHWM``), so a size's memory is
measured on its own. The baseline of every size is the smallest size: the ratio is the
growth of per-event cost (or of peak RSS) over it.

A second workload (``engage``) writes the same number of events as engagements shared
out among a few busy leads, each command with its own id and ``event_id`` as the ingest's
are (at 10^6 events, some 10^5 engagements per lead), on a store whose snapshots are
sealed by an audit key (unsealed ones are proven by replaying their events on every
load). It reports the per-event cost and peak RSS as above, the size of a busy lead's
latest snapshot and how long loading that lead from the store takes.

Targets, at the largest size: per-event cost at most 1.5 x that of the smallest size
(flat: 100 times the events may not cost 50 % more each); peak RSS at most 1.5 x that of
the smallest size (bounded: memory may not grow with the store); a busy lead's snapshot
under 4 KB and its load under 20 ms.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from uuid import uuid4

from adapters.audit_keys import generate_key_pair
from adapters.audit_settings import AuditSettings
from adapters.settings import Settings
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Target,
    log,
)
from benchmarks.growth_probe import run_child
from benchmarks.stores import fresh_store

FLAT = Target(on="ratio", at_most=1.5)
BOUNDED = Target(on="ratio", at_most=1.5)
SMALL_SNAPSHOT = Target(on="value", at_most=4096)
FAST_LOAD = Target(on="value", at_most=20)
PROBE_TIMEOUT_SECONDS = 3 * 3600
_FORKS = multiprocessing.get_context("forkserver")

PARAMS = (
    Param(
        "sizes",
        quick=(1_000, 10_000),
        full=(10_000, 100_000, 1_000_000),
        help="stored events at each size",
    ),
    Param("batch_size", quick=500, full=500, help="commands per handle_many call when writing"),
    Param("page_size", quick=500, full=500, help="notifications per page when reading"),
)


@dataclass(frozen=True)
class Phase:
    events: int
    stored: int
    seconds: float
    peak_rss_kib: int
    start_rss_kib: int
    snapshot_bytes: int = 0
    load_ms: float = 0.0
    engagements: int = 0

    @property
    def micros_per_event(self) -> float:
        return self.seconds * 1e6 / self.events


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    _FORKS.set_forkserver_preload(["benchmarks.growth_probe"])
    sizes = sorted(ctx.ints_param("sizes"))
    batch_size, page_size = ctx.int_param("batch_size"), ctx.int_param("page_size")
    phases: dict[tuple[str, int], list[Phase]] = {}
    for number in range(ctx.rounds):
        for size in sizes:
            with fresh_store(ctx, kind, "growth") as settings:
                written = _probe(settings, "write", size, batch_size)
                read = _probe(settings, "read", page_size)
            if read.events != written.stored:
                msg = f"stored {written.stored} events but streamed back {read.events}"
                raise BenchmarkError(msg)
            with fresh_store(ctx, kind, "growth_ids") as settings:
                engaged = _probe(_sealed(settings, ctx), "engage", size, batch_size)
            phases.setdefault(("write", size), []).append(written)
            phases.setdefault(("read", size), []).append(read)
            phases.setdefault(("engage", size), []).append(engaged)
            log.info(
                "round",
                benchmark="growth",
                store=kind,
                round=number,
                size=size,
                write_us_per_event=round(written.micros_per_event, 1),
                read_us_per_event=round(read.micros_per_event, 1),
                write_peak_mib=round(written.peak_rss_kib / 1024, 1),
                read_peak_mib=round(read.peak_rss_kib / 1024, 1),
                engage_us_per_event=round(engaged.micros_per_event, 1),
                busy_lead_engagements=engaged.engagements,
                busy_lead_snapshot_bytes=engaged.snapshot_bytes,
                busy_lead_load_ms=round(engaged.load_ms, 2),
            )
    results: list[Result] = []
    for phase, verb in (
        ("write", "handle_many"),
        ("read", "stream + decode"),
        ("engage", "handle_many, engagements with their own ids"),
    ):
        results += _rows(kind, phase, verb, sizes, phases, "cost")
        results += _rows(kind, phase, verb, sizes, phases, "peak_rss")
    results += _busy_lead_rows(kind, sizes, phases, "snapshot_bytes", "bytes", SMALL_SNAPSHOT)
    results += _busy_lead_rows(kind, sizes, phases, "load_ms", "ms", FAST_LOAD)
    return results


def _sealed(settings: Settings, ctx: BenchContext) -> Settings:
    """The settings with a new audit key, so the store's snapshots are sealed."""
    key_file = ctx.work_dir / f"growth_audit_{uuid4().hex[:10]}.pem"
    generate_key_pair(key_file)
    return settings.model_copy(update={"audit": AuditSettings(key_file=key_file)})


def _busy_lead_rows(
    kind: str,
    sizes: list[int],
    phases: dict[tuple[str, int], list[Phase]],
    figure: str,
    unit: str,
    target: Target,
) -> list[Result]:
    what = {"snapshot_bytes": "latest snapshot of", "load_ms": "loading"}[figure]

    def series(size: int) -> Series:
        runs = phases[("engage", size)]
        engagements = max(p.engagements for p in runs)
        return Series(
            f"{what} a busy lead ({engagements:,} engagements, {size:,} events stored)",
            unit,
            [float(getattr(p, figure)) for p in runs],
        )

    baseline = series(sizes[0])
    return [
        Result(
            benchmark="growth",
            name=f"growth.busy_lead_{figure} n={size:,}",
            store=kind,
            measured=series(size),
            baseline=baseline if size != sizes[0] else None,
            higher_is_better=False,
            target=target if size == sizes[-1] else None,
        )
        for size in sizes
    ]


def _rows(
    kind: str,
    phase: str,
    verb: str,
    sizes: list[int],
    phases: dict[tuple[str, int], list[Phase]],
    figure: str,
) -> list[Result]:
    def series(size: int) -> Series:
        runs = phases[(phase, size)]
        if figure == "cost":
            return Series(
                f"{verb}, {size:,} events stored", "us/event", [p.micros_per_event for p in runs]
            )
        return Series(
            f"{verb} process, {size:,} events stored",
            "MiB",
            [p.peak_rss_kib / 1024 for p in runs],
        )

    smallest, largest = sizes[0], sizes[-1]
    baseline = series(smallest)
    baseline.description = f"same, at the smallest size ({smallest:,} events)"
    rows = []
    for size in sizes:
        runs = phases[(phase, size)]
        rows.append(
            Result(
                benchmark="growth",
                name=f"growth.{phase}_{figure} n={size:,}",
                store=kind,
                measured=series(size),
                baseline=baseline,
                higher_is_better=False,
                target=(FLAT if figure == "cost" else BOUNDED)
                if size == largest and size != smallest
                else None,
                details={
                    "events": [p.events for p in runs],
                    "events_per_second": [round(p.events / p.seconds, 1) for p in runs],
                    "start_rss_mib": [round(p.start_rss_kib / 1024, 1) for p in runs],
                },
            )
        )
    return rows


def _probe(settings: Settings, phase: str, *sizes: int) -> Phase:
    """Run one phase in a process forked from the forkserver, and read its report."""
    receiver, sender = _FORKS.Pipe(duplex=False)
    child = _FORKS.Process(
        target=run_child, args=(sender, settings, phase, sizes), name=f"growth-{phase}"
    )
    child.start()
    sender.close()
    try:
        report = receiver.recv() if receiver.poll(PROBE_TIMEOUT_SECONDS) else {"error": "timed out"}
    except EOFError:
        report = {"error": "the probe process died without a report"}
    finally:
        receiver.close()
        child.join(timeout=60)
    what = f"growth probe {phase} {', '.join(map(str, sizes))} (exit {child.exitcode})"
    if "error" in report:
        if child.is_alive():
            child.kill()
        msg = f"{what}: {report['error']}"
        raise BenchmarkError(msg)
    return Phase(
        events=int(report["events"]),
        stored=int(report["stored"]),
        seconds=float(report["seconds"]),
        peak_rss_kib=int(report["peak_rss_kib"]),
        start_rss_kib=int(report["start_rss_kib"]),
        snapshot_bytes=int(report.get("snapshot_bytes", 0)),
        load_ms=float(report.get("load_ms", 0.0)),
        engagements=int(report.get("engagements", 0)),
    )


BENCHMARK = Benchmark(
    name="growth",
    summary="per-event cost and peak RSS writing and streaming 10^4..10^6 stored events; "
    "a busy lead's snapshot size and load time when every command carries its own id",
    run=run,
    params=PARAMS,
)
