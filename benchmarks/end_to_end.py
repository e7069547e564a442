"""``end_to_end``: latency from an engagement record produced to the read model showing it.

``leadflow ingest``, ``leadflow relay`` and ``leadflow project`` run as real processes (the
CLI, configured by ``LEADFLOW_*`` variables) on a SQLite event store and SQLite read
model, with scratch topics. This process offers engagement records (one new lead each,
``form_submit`` with firmographics) on the engagement topic at a fixed rate for
``seconds`` seconds, and a watcher polls the read model every ``poll_ms`` until each
lead's row reaches the version the record produces (capture, engagement and the scores:
every event of the record applied). The records are split, in sending order, into as
many consecutive windows as the run has rounds; each window gives p50, p99 and max.
Before the measured load, an unrecorded warm-up load of ``warmup_seconds``.

The baseline, in the same run at the same rate and duration (before the pipeline
starts): the raw Kafka round trip, the same records produced to a scratch topic and
consumed by a plain ``KafkaConsumer`` polling it. Target: p99 < 250 ms.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from benchmarks.framework import (
    BenchContext,
    Benchmark,
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
from benchmarks.pipeline_processes import running_pipeline
from benchmarks.topics import delete_topics, scratch_topics, unique_topic, with_bootstrap
from benchmarks.workload import ATTRIBUTES
from consumers.engagement_apply import IngestLimits, apply_engagements
from consumers.stream_settings import StreamSettings
from domain.application import lead_id_for
from leadflow.event_store import open_application
from leadflow.settings import KafkaSettings, Settings

P99_TARGET = Target(on="value", at_most=250.0)
ENGAGEMENT_KIND = "form_submit"

PARAMS = (
    Param("rate", quick=100, full=500, help="records offered per second"),
    Param("seconds", quick=3, full=60, help="seconds of measured load"),
    Param("warmup_seconds", quick=1, full=5, help="seconds of unrecorded warm-up load"),
    Param("poll_ms", quick=5, full=5, help="how often the watcher polls the read model"),
    Param("drain_seconds", quick=60, full=120, help="how long records may take to show"),
)


def engagement_offers(tag: str, count: int) -> list[Offer]:
    """``count`` engagement records, one new lead each; the key is the lead's id."""
    offers = []
    for number in range(count):
        lead = f"e2e-{tag}-{number}@bench.example"
        record = {
            "event_id": f"e2e-{tag}-{number}",
            "lead": lead,
            "kind": ENGAGEMENT_KIND,
            "occurred_at": datetime.now(UTC).isoformat(),
            "source": "bench",
            "campaign": "end-to-end",
            "attributes": ATTRIBUTES,
            "properties": {"form": "demo"},
        }
        offers.append(Offer(str(lead_id_for(lead)), json.dumps(record).encode()))
    return offers


def version_after_one_record(work_dir: Path, offer: Offer) -> int:
    """The version a new lead reaches with one such record: applied to a scratch store
    exactly as the ingest applies it."""
    settings = Settings(data_dir=work_dir / f"e2e_scratch_{uuid4().hex[:8]}", postgres_dsn=None)
    record = IngestLimits.from_settings(StreamSettings()).parse(offer.value)
    with open_application(settings, default_actor="benchmark") as app:
        apply_engagements(app, [(record, "benchmark:scratch")], "benchmark")
        return app.get_lead(record.lead_ref).version


def run(ctx: BenchContext) -> list[Result]:
    assert ctx.kafka_bootstrap is not None, "the runner provides a broker"
    rate, seconds = ctx.int_param("rate"), ctx.int_param("seconds")
    warmup = ctx.int_param("warmup_seconds")
    tag = uuid4().hex[:8]
    kafka = with_bootstrap(KafkaSettings(), ctx.kafka_bootstrap)
    warm = engagement_offers(f"{tag}w", rate * warmup)
    measured = engagement_offers(tag, rate * seconds)
    version = version_after_one_record(ctx.work_dir, measured[0])
    baseline = _raw_round_trip(ctx, kafka, warm, measured, rate)
    pipeline = _pipeline_latency(ctx, kafka, (warm, measured), rate, version)
    details = {
        "rate": rate,
        "seconds": seconds,
        "records": len(measured),
        "windows": ctx.rounds,
        "lead_version_awaited": version,
        "stores": "SQLite event store and SQLite read model",
        "processes": "leadflow ingest, leadflow relay, leadflow project",
        "poll_ms": ctx.int_param("poll_ms"),
        "partitions": kafka.partitions,
    }
    results = []
    for figure, target in (("p50", None), ("p99", P99_TARGET), ("max", None)):
        results.append(
            Result(
                benchmark="end_to_end",
                name=f"end_to_end.{figure}",
                store="sqlite",
                measured=Series(
                    f"engagement record -> read model, {rate}/s, {figure} per window",
                    "ms",
                    _figures(pipeline, figure),
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
    return results


Windows = list[Window]


def _figures(windows: Windows, figure: str) -> list[float]:
    return [float(getattr(w, figure)) for w in windows]


def _raw_round_trip(
    ctx: BenchContext, kafka: KafkaSettings, warm: list[Offer], measured: list[Offer], rate: int
) -> Windows:
    with scratch_topics(kafka, "e2e-raw") as (topic,):
        watcher = TopicWatcher(kafka, topic)
        return _measure(ctx, kafka, topic, watcher, (warm, measured), rate)


def _pipeline_latency(
    ctx: BenchContext,
    kafka: KafkaSettings,
    loads: tuple[list[Offer], list[Offer]],
    rate: int,
    version: int,
) -> Windows:
    data_dir = ctx.work_dir / f"e2e_{uuid4().hex[:8]}"
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
    try:
        with running_pipeline(env, data_dir / "logs") as processes:
            watcher = ReadModelWatcher(
                Settings(data_dir=data_dir, postgres_dsn=None).sqlite_read_models,
                version,
                ctx.int_param("poll_ms") / 1000,
            )
            windows = _measure(ctx, kafka, topics["ENGAGEMENT_TOPIC"], watcher, loads, rate)
            for process in processes:
                process.check_alive()
            return windows
    finally:
        delete_topics(kafka, list(topics.values()))


def _measure(
    ctx: BenchContext,
    kafka: KafkaSettings,
    topic: str,
    watcher: Watcher,
    loads: tuple[list[Offer], list[Offer]],
    rate: int,
) -> Windows:
    warm, measured = loads
    drain = ctx.int_param("drain_seconds")
    producer = load_producer(kafka)
    watcher.start()
    try:
        offer_at_rate(producer, topic, warm, rate, watcher)
        watcher.wait_for_all([o.key for o in warm], drain)
        sent = offer_at_rate(producer, topic, measured, rate, watcher)
        keys = [o.key for o in measured]
        watcher.wait_for_all(keys, drain)
    finally:
        producer.close(timeout=10)
        watcher.close()
    return latency_windows(keys, sent, watcher.seen, ctx.rounds)


BENCHMARK = Benchmark(
    name="end_to_end",
    summary="ms from an engagement record to the read model (ingest, relay, projector as "
    "processes) vs the raw Kafka round trip, at a fixed rate",
    run=run,
    params=PARAMS,
    uses_stores=False,
    needs_kafka=True,
)
