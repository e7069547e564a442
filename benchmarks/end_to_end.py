"""``end_to_end``: latency from an engagement record produced to the read model showing it.

``leadflow ingest``, ``leadflow relay`` and ``leadflow project`` run as real processes (the
CLI, configured by ``LEADFLOW_*`` variables) on a fresh store of each kind (a SQLite event
store and read model; a PostgreSQL schema holding both, the relay woken by LISTEN/NOTIFY),
with scratch topics. This process offers engagement records on the engagement
topic at a fixed rate for ``seconds`` seconds, one lead each, as marketing automation
sends them: mostly activity of known leads (a ``page_view`` of a lead captured before
the run: the engagement and its score, 2 events) and one record in ``new_lead_every``
from a lead not seen before (a ``form_submit`` with firmographics: capture, engagement
and the scores, about 5 events). A watcher polls the read model every ``poll_ms`` until
each lead's row reaches the version its record leads to (every event of the record
applied). The records are split, in sending order, into as
many consecutive windows as the run has rounds; each window gives p50, p99 and max.
Before each measured load, an unrecorded warm-up load of ``warmup_seconds``.

The baseline, in the same run at the same rate and duration (before the pipeline
starts): the raw Kafka round trip, the same records produced to a scratch topic and
consumed by a plain ``KafkaConsumer`` polling it. Target: p99 < 150 ms at ``rate``.

The capacity curve: the same pipeline offered each rate of ``curve_rates`` in turn (from
the lowest, each for ``seconds`` after its warm-up, the backlog drained in between):
p50 and p99 over the whole load at each rate, and ``end_to_end.capacity``, the highest
of those rates whose p99 stays under 250 ms (target: at least 500 records/s).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import structlog

from adapters.settings import KafkaSettings, Settings
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Target,
)
from benchmarks.latency import (
    Offer,
    ReadModelWatcher,
    TopicWatcher,
    Watcher,
    Window,
    latency_windows,
    load_producer,
    offer_at_rate,
)
from benchmarks.latency_stages import stage_figures, stored_moments
from benchmarks.pipeline_processes import cpu_shares, running_pipeline
from benchmarks.stores import fresh_store
from benchmarks.topics import delete_topics, scratch_topics, unique_topic, with_bootstrap
from benchmarks.workload import ATTRIBUTES, capture
from consumers.ingest.apply import IngestLimits, apply_engagements
from domain.errors import DomainError
from leadflow.bootstrap import load_settings, open_application
from service.ids import IdScheme

log = structlog.get_logger("leadflow.benchmarks.end_to_end")

P99_TARGET = Target(on="value", at_most=150.0)
CAPACITY_P99_MS = 250.0
CAPACITY_TARGET = Target(on="value", at_least=500.0)
CURVE_RATES = (100, 200, 300, 500, 800)
NEW_LEAD_KIND = "form_submit"
CAPTURE_BATCH = 500
LOST_AFTER_DRAINS = 5  # a record not in the read model by then is lost

PARAMS = (
    # quick mode offers the same rates (for less time), so that it prints the same rows
    Param("rate", quick=500, full=500, help="records offered per second (windows, baseline)"),
    Param("curve_rates", quick=CURVE_RATES, full=CURVE_RATES, help="capacity curve"),
    Param("seconds", quick=3, full=60, help="seconds of measured load at each rate"),
    Param("warmup_seconds", quick=1, full=5, help="seconds of unrecorded warm-up load"),
    Param("poll_ms", quick=5, full=5, help="how often the watcher polls the read model"),
    Param("drain_seconds", quick=60, full=120, help="how long records may take to show"),
    Param("new_lead_every", quick=10, full=10, help="one record in N is from a new lead"),
)
KNOWN_LEAD_KIND = "page_view"


@dataclass(frozen=True)
class Load:
    """Records to offer, the known leads to capture first, and the version each record's
    lead (by id) reaches once the record is applied."""

    offers: list[Offer]
    known_leads: list[str]
    versions: dict[str, int]


def engagement_record(tag: str, number: int, *, new_lead: bool) -> tuple[str, bytes]:
    """A lead's external id and its engagement record."""
    lead = f"e2e-{tag}-{number}@bench.example"
    record: dict[str, object] = {
        "event_id": f"e2e-{tag}-{number}",
        "lead": lead,
        "kind": NEW_LEAD_KIND if new_lead else KNOWN_LEAD_KIND,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "bench",
        "campaign": "end-to-end",
    }
    if new_lead:
        record |= {"attributes": ATTRIBUTES, "properties": {"form": "demo"}}
    else:
        record["properties"] = {"url": "/pricing"}
    return lead, json.dumps(record).encode()


def engagement_load(
    ids: IdScheme, tag: str, count: int, new_lead_every: int, versions: tuple[int, int]
) -> Load:
    """``count`` records, one lead each; every ``new_lead_every``-th from a new lead.
    ``versions``: what a new lead and a known lead reach with their record; ``ids``: the
    pipeline store's id scheme, which allocates every lead's id now (in its lead index:
    the ingest's capture takes the id allocated), so that the records' keys are known."""
    new_version, known_version = versions
    load = Load([], [], {})
    records = [engagement_record(tag, n, new_lead=n % new_lead_every == 0) for n in range(count)]
    with ids.batch([], [lead for lead, _ in records]):
        for number, (lead, value) in enumerate(records):
            new_lead = number % new_lead_every == 0
            key = str(ids.new_lead(lead))
            load.offers.append(Offer(key, value))
            load.versions[key] = new_version if new_lead else known_version
            if not new_lead:
                load.known_leads.append(lead)
    return load


def versions_after_one_record(work_dir: Path) -> tuple[int, int]:
    """The versions a new lead and a known lead reach with one record each: applied to a
    scratch store exactly as the ingest applies them."""
    scratch = work_dir / f"e2e_scratch_{uuid4().hex[:8]}"
    settings = load_settings().with_store(data_dir=scratch, postgres_dsn=None)
    limits = IngestLimits.from_settings(settings.stream)
    versions = []
    with open_application(settings, default_actor="benchmark") as app:
        for new_lead in (True, False):
            lead, value = engagement_record("scratch", int(new_lead), new_lead=new_lead)
            if not new_lead:
                app.handle(capture(lead))
            record = limits.parse(value)
            # each record its own origin: a shared one would make the second a redelivery
            origin = f"benchmark:scratch:{int(new_lead)}"
            apply_engagements(app, [(record, origin)], "benchmark")
            versions.append(app.get_lead(record.lead_ref).version)
    return versions[0], versions[1]


def capture_known_leads(settings: Settings, loads: Sequence[Load]) -> dict[str, int]:
    """Capture the known leads before the pipeline starts; the version each (by id)
    then has, which the read model shows once the relay and the projector took them in."""
    leads = [lead for load in loads for lead in load.known_leads]
    captured: dict[str, int] = {}
    with open_application(settings, default_actor="benchmark") as app:
        for start in range(0, len(leads), CAPTURE_BATCH):
            for outcome in app.handle_many(
                [capture(x) for x in leads[start : start + CAPTURE_BATCH]]
            ):
                if isinstance(outcome, DomainError):
                    raise BenchmarkError(f"capturing a known lead was refused: {outcome}")
                captured |= {str(i): outcome.events for i in outcome.aggregate_ids}
    return captured


def run(ctx: BenchContext) -> list[Result]:
    assert ctx.kafka_bootstrap is not None, "the runner provides a broker"
    store = ctx.store_kind
    rate, seconds = ctx.int_param("rate"), ctx.int_param("seconds")
    curve_rates = sorted(set(ctx.ints_param("curve_rates")) - {rate})
    kafka = with_bootstrap(load_settings().kafka, ctx.kafka_bootstrap)
    versions = versions_after_one_record(ctx.work_dir)
    with fresh_store(ctx, store, "e2e") as settings:
        tag = uuid4().hex[:8]

        def load_at(ids: IdScheme, offered: int, label: str) -> tuple[Load, Load]:
            warmup = offered * ctx.int_param("warmup_seconds")
            every = ctx.int_param("new_lead_every")
            return (
                engagement_load(ids, f"{tag}{label}w", warmup, every, versions),
                engagement_load(ids, f"{tag}{label}", offered * seconds, every, versions),
            )

        with open_application(settings, default_actor="benchmark") as app:  # creates it
            main = load_at(app.ids, rate, "m")
            curve = {r: load_at(app.ids, r, f"c{r}") for r in curve_rates}
        baseline = _raw_round_trip(ctx, kafka, main[0].offers, main[1].offers, rate)
        latencies, cpu, stages = _pipeline_latency(ctx, kafka, settings, {rate: main, **curve})
    windows = latency_windows(*latencies[rate], ctx.rounds)
    details = {
        "rate": rate,
        "seconds": seconds,
        "records": len(main[1].offers),
        "new_lead_every": ctx.int_param("new_lead_every"),
        "windows": ctx.rounds,
        "lead_version_awaited": {"new lead": versions[0], "known lead": versions[1]},
        "stores": f"{store} event store and read model",
        "processes": "leadflow ingest, leadflow relay, leadflow project",
        "poll_ms": ctx.int_param("poll_ms"),
        "partitions": kafka.partitions,
        "cpu_cores": {str(offered): cpu[offered] for offered in sorted(cpu)},
        "stages_ms": {str(offered): stages[offered] for offered in sorted(stages)},
    }
    results = []
    for figure, target in (("p50", None), ("p99", P99_TARGET), ("max", None)):
        results.append(
            Result(
                benchmark="end_to_end",
                name=f"end_to_end.{figure}",
                store=store,
                measured=Series(
                    f"engagement record -> read model, {rate}/s, {figure} per window",
                    "ms",
                    _figures(windows, figure),
                ),
                baseline=Series(
                    f"raw Kafka round trip (produce -> consume), {rate}/s, {figure} per window",
                    "ms",
                    _figures(baseline, figure),
                ),
                higher_is_better=False,
                target=target,
                details=details,
            )
        )
    return results + _curve_results(store, latencies, ctx.rounds, details)


def _curve_results(
    store: str, latencies: dict[int, Latencies], rounds: int, details: dict[str, object]
) -> list[Result]:
    """p50 and p99 at each rate (per window, as the main rows), and in each window the
    highest rate whose p99 stayed under ``CAPACITY_P99_MS`` (0 when none did)."""
    windows = {offered: latency_windows(*latencies[offered], rounds) for offered in latencies}
    results = []
    for offered in sorted(windows):
        for figure in ("p50", "p99"):
            results.append(
                Result(
                    benchmark="end_to_end",
                    name=f"end_to_end.curve.{figure} rate={offered}",
                    store=store,
                    measured=Series(
                        f"engagement record -> read model, {offered}/s, {figure} per window",
                        "ms",
                        _figures(windows[offered], figure),
                    ),
                    baseline=None,
                    higher_is_better=False,
                    details=details,
                )
            )
    capacity = [
        float(max([0, *(r for r in windows if windows[r][i].p99 < CAPACITY_P99_MS)]))
        for i in range(rounds)
    ]
    results.append(
        Result(
            benchmark="end_to_end",
            name="end_to_end.capacity",
            store=store,
            measured=Series(
                f"the highest rate of the curve with p99 < {CAPACITY_P99_MS:g} ms, per window",
                "records/s",
                capacity,
            ),
            baseline=None,
            higher_is_better=True,
            target=CAPACITY_TARGET,
            details={**details, "curve_rates": sorted(windows)},
        )
    )
    return results


Windows = list[Window]


def _figures(windows: Windows, figure: str) -> list[float]:
    return [float(getattr(w, figure)) for w in windows]


def _raw_round_trip(
    ctx: BenchContext, kafka: KafkaSettings, warm: list[Offer], measured: list[Offer], rate: int
) -> Windows:
    with scratch_topics(kafka, "e2e-raw") as (topic,):
        watcher = TopicWatcher(kafka, topic)
        return latency_windows(
            *_measure(ctx, kafka, topic, watcher, (warm, measured), rate), ctx.rounds
        )


Latencies = tuple[list[str], dict[str, float], dict[str, float]]
"""The keys of a measured load, when each was sent and when each was seen."""
Stages = dict[str, dict[str, float]]
"""Stage -> p50 and p99 (ms) of a measured load."""


def _pipeline_latency(
    ctx: BenchContext,
    kafka: KafkaSettings,
    settings: Settings,
    loads: dict[int, tuple[Load, Load]],
) -> tuple[dict[int, Latencies], dict[int, dict[str, float]], dict[int, Stages]]:
    """Each rate's loads through one running pipeline, from the lowest rate up; the
    CPU cores each process used at each rate (warm-up, load and drain); and where each
    rate's latency went (``latency_stages``)."""
    data_dir = settings.store.data_dir
    topics = {
        "ENGAGEMENT_TOPIC": unique_topic("e2e-engagement"),
        "DLQ_TOPIC": unique_topic("e2e-dlq"),
        "EVENTS_TOPIC": unique_topic("e2e-events"),
        "QUALIFICATION_TOPIC": unique_topic("e2e-qualification"),
    }
    env = {
        "LEADFLOW_DATA_DIR": str(data_dir),
        "LEADFLOW_KAFKA_BOOTSTRAP": ctx.kafka_bootstrap or "",
        **{f"LEADFLOW_STREAM_{k}": v for k, v in topics.items()},
        "LEADFLOW_STREAM_INGEST_GROUP": f"bench-ingest-{uuid4().hex[:8]}",
        "LEADFLOW_PROJECTOR_TOPIC": topics["EVENTS_TOPIC"],
        "LEADFLOW_PROJECTOR_GROUP_ID": f"bench-projector-{uuid4().hex[:8]}",
    }
    if settings.store.dsn is not None:
        env |= {
            "LEADFLOW_POSTGRES_DSN": settings.store.dsn,
            "LEADFLOW_POSTGRES_SCHEMA": settings.store.postgres_schema,
        }
    every_load = [load for pair in loads.values() for load in pair]
    captured = capture_known_leads(settings, every_load)
    versions = {k: v for load in every_load for k, v in load.versions.items()}
    latencies = {}
    cpu: dict[int, dict[str, float]] = {}
    try:
        with running_pipeline(env, data_dir / "logs") as processes:
            # the captures reach the read model before the first load: no backlog in it
            _wait_in_read_model(ctx, settings, captured)
            for offered in sorted(loads):
                watcher = ReadModelWatcher(
                    settings.store, versions, ctx.int_param("poll_ms") / 1000
                )
                warm, measured = loads[offered]
                topic = topics["ENGAGEMENT_TOPIC"]
                with cpu_shares(processes) as cpu[offered]:
                    latencies[offered] = _measure(
                        ctx, kafka, topic, watcher, (warm.offers, measured.offers), offered
                    )
                log.info("pipeline_cpu", rate=offered, cores=cpu[offered])
                for process in processes:
                    process.check_alive()
            _wait_in_read_model(ctx, settings, versions)  # nothing lost
        moments = stored_moments(kafka, topics["EVENTS_TOPIC"], versions)
        stages = {
            offered: stage_figures(keys, sent, seen, moments)
            for offered, (keys, sent, seen) in latencies.items()
        }
        return latencies, cpu, stages
    finally:
        delete_topics(kafka, list(topics.values()))


def _wait_in_read_model(ctx: BenchContext, settings: Settings, versions: dict[str, int]) -> None:
    """Every lead at its version in the read model at last (after the loads, a record
    counted late at a rate beyond capacity must still arrive): BenchmarkError naming the
    first missing."""
    watcher = ReadModelWatcher(settings.store, versions, ctx.int_param("poll_ms") / 1000)
    for key in versions:
        watcher.expect(key)
    watcher.start()
    try:
        watcher.wait_for_all(list(versions), LOST_AFTER_DRAINS * ctx.int_param("drain_seconds"))
    finally:
        watcher.close()


def _measure(
    ctx: BenchContext,
    kafka: KafkaSettings,
    topic: str,
    watcher: Watcher,
    loads: tuple[list[Offer], list[Offer]],
    rate: int,
) -> Latencies:
    """The warm-up load, then the measured one; a record the pipeline has not shown after
    ``drain_seconds`` counts with that latency (a rate beyond its capacity)."""
    warm, measured = loads
    drain = ctx.int_param("drain_seconds")
    producer = load_producer(kafka)
    watcher.start()
    try:
        offer_at_rate(producer, topic, warm, rate, watcher)
        watcher.wait_or_mark_late([o.key for o in warm], drain)
        sent = offer_at_rate(producer, topic, measured, rate, watcher)
        keys = [o.key for o in measured]
        watcher.wait_or_mark_late(keys, drain)
    finally:
        producer.close(timeout=10)
        watcher.close()
    return keys, sent, watcher.seen


BENCHMARK = Benchmark(
    name="end_to_end",
    summary="ms from an engagement record to the read model (ingest, relay, projector as "
    "processes) vs the raw Kafka round trip, at a fixed rate",
    run=run,
    params=PARAMS,
    needs_kafka=True,
)
