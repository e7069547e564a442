"""Where an ``end_to_end`` record's latency goes, stage by stage.

Read back from the pipeline's events topic once the loads are in the read model: for
each lead, the record carrying the version its engagement record leads to gives two
moments, the event's ``timestamp`` (when the ingest built it, just before storing it)
and the Kafka record's create time (when the relay sent it). With the moment the load
sent the engagement record and the moment the watcher saw the read model at that
version, a record's latency splits into

- ``ingest``: sent -> built (the broker, the ingest's poll and gathering, its queue);
- ``relay``: built -> sent by the relay (the ingest's commit, the relay's wake-up and read);
- ``projector``: sent by the relay -> seen (the broker, the projector, the watcher's poll).

All on one machine's clock; the load's and the watcher's monotonic moments are moved
to wall-clock time with one offset.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from itertools import pairwise

from kafka import KafkaConsumer

from adapters.settings import KafkaSettings
from benchmarks.latency import percentile, read_from_start

STAGES = ("ingest", "relay", "projector")
_IDLE_POLLS = 3  # empty polls in a row after which the topic is read to its end


def stored_moments(
    kafka: KafkaSettings, topic: str, versions: Mapping[str, int]
) -> dict[str, tuple[float, float]]:
    """Lead id -> (built, sent by the relay), wall-clock seconds, for the record of each
    lead at the version ``versions`` awaits."""
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    try:
        assigned = read_from_start(consumer, topic)
        ends = consumer.end_offsets(assigned)
        found: dict[str, tuple[float, float]] = {}
        idle = 0
        while idle < _IDLE_POLLS and any(consumer.position(tp) < ends[tp] for tp in assigned):
            polled = consumer.poll(timeout_ms=500)
            idle = 0 if polled else idle + 1
            for records in polled.values():
                for record in records:
                    value = json.loads(record.value)
                    lead = value["originator_id"]
                    state = value.get("state") or {}  # null: an undecodable event
                    awaited = versions.get(lead) == value["originator_version"]
                    if awaited and "timestamp" in state and lead not in found:
                        built = datetime.fromisoformat(state["timestamp"])
                        # a record sent again (a relay taking over) keeps its first send
                        found[lead] = (built.timestamp(), record.timestamp / 1000)
        return found
    finally:
        consumer.close(autocommit=False)


def stage_figures(
    keys: Sequence[str],
    sent: Mapping[str, float],
    seen: Mapping[str, float],
    moments: Mapping[str, tuple[float, float]],
) -> dict[str, dict[str, float]]:
    """p50 and p99 (ms) of each stage over ``keys`` (``sent``/``seen`` monotonic)."""
    to_wall = time.time() - time.monotonic()
    spans: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for key in keys:
        if key not in moments or key not in seen:
            continue
        built, relayed = moments[key]
        marks = (sent[key] + to_wall, built, relayed, seen[key] + to_wall)
        for stage, (began, ended) in zip(STAGES, pairwise(marks), strict=True):
            spans[stage].append((ended - began) * 1000)
    return {stage: _summary(ms) for stage, ms in spans.items()}


def _summary(ms: Iterable[float]) -> dict[str, float]:
    ordered = sorted(ms)
    if not ordered:
        return {}
    return {
        "p50": round(statistics.median(ordered), 1),
        "p99": round(percentile(ordered, 0.99), 1),
    }
