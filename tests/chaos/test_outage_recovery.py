"""Single-fault reproductions of what the chaos runs found: one outage, one process.

``leadflow ingest`` once kept its ledger's PostgreSQL connection (``StoreDb``) after the
server restarted: every batch then stored its engagements, published its dead letters,
failed writing the ledger ("the connection is lost"), rewound and started over, forever.
``StoreDb`` now drops a connection that failed and opens a new one for the next batch.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from deploy.kafka.broker import Broker
from deploy.postgres.server import PostgresServer
from tests.chaos.engagement_load import EngagementLoad, EngagementPlan
from tests.chaos.journal import Journal
from tests.e2e.pipeline.pipeline import ROLES, TRANSIENT, Pipeline
from tests.integration.consumers.stream_helpers import CliProcess

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def judged(pipeline: Pipeline) -> int:
    try:
        return pipeline.ingest_counts().consumed
    except TRANSIENT:
        return -1


def wait_judged(pipeline: Pipeline, count: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (now := judged(pipeline)) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    return now


def pipeline_under_load(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str, seed: int
) -> tuple[Pipeline, EngagementLoad]:
    """A pipeline on PostgreSQL and 20 records/s of engagement load, not yet started."""
    pipeline = Pipeline(tmp_path, kafka_bootstrap, postgres_dsn)
    pipeline.ensure_engagement_topic()
    plan = EngagementPlan(random.Random(seed), leads=20)
    topic = pipeline.setup.stream.engagement_topic
    return pipeline, EngagementLoad(kafka_bootstrap, topic, plan, 20, Journal())


def exited(processes: dict[str, CliProcess]) -> dict[str, int]:
    """The processes that have exited, with their exit codes."""
    codes = {role: process.process.poll() for role, process in processes.items()}
    return {role: code for role, code in codes.items() if code is not None}


def test_ingest_keeps_going_after_postgresql_restarts(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_dsn: str,
    postgres_server: PostgresServer | None,
) -> None:
    if postgres_server is None:
        pytest.skip("external PostgreSQL (LEADFLOW_POSTGRES_DSN): not ours to restart")
    pipeline, load = pipeline_under_load(tmp_path, kafka_bootstrap, postgres_dsn, 3)
    ingest = pipeline.start("ingest")
    try:
        ingest.wait_for_log("ingest_ready", timeout=60)
        load.start()
        assert wait_judged(pipeline, 20, 60) >= 20, "the ingest works before the restart"
        try:
            postgres_server.stop()
            time.sleep(2)
        finally:
            postgres_server.start()
        time.sleep(3)
        load.finish()
        sent = len(load.plan.catalog)
        assert ingest.process.poll() is None, "the ingest rode out the restart"
        assert wait_judged(pipeline, sent, 30) == sent, (
            f"the ingest judged {judged(pipeline)} of {sent} records after PostgreSQL "
            f"restarted; its log: {ingest.log_path}"
        )
    finally:
        load.close()
        ingest.terminate(timeout=30)


def test_stream_processes_ride_out_a_broker_restart(
    tmp_path: Path, kafka_bootstrap: str, kafka_broker: Broker | None, postgres_dsn: str
) -> None:
    if kafka_broker is None:
        pytest.skip("external broker (LEADFLOW_KAFKA_BOOTSTRAP): not ours to restart")
    pipeline, load = pipeline_under_load(tmp_path, kafka_bootstrap, postgres_dsn, 5)
    processes = {role: pipeline.start(role) for role in ROLES}
    try:
        processes["ingest"].wait_for_log("ingest_ready", timeout=60)
        load.start()
        assert wait_judged(pipeline, 20, 60) >= 20, "the ingest works before the restart"
        try:
            kafka_broker.stop()
            time.sleep(4)
        finally:
            kafka_broker.start()
        load.finish()
        pipeline.wait_drained(120)
        gone = exited(processes)
        assert not gone, f"exited during the outage: {gone}; logs: {pipeline.log_dir}"
    finally:
        load.close()
        for process in processes.values():
            process.terminate(timeout=30)


def test_stream_processes_wait_for_postgresql_to_start(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_dsn: str,
    postgres_server: PostgresServer | None,
) -> None:
    if postgres_server is None:
        pytest.skip("external PostgreSQL (LEADFLOW_POSTGRES_DSN): not ours to stop")
    pipeline = Pipeline(tmp_path, kafka_bootstrap, postgres_dsn)
    pipeline.ensure_engagement_topic()
    waiting = {
        "ingest": ("event_store_unreachable", "ingest_ready"),
        "relay": ("event_store_unreachable", "relay_active"),
        "projector": ("event_store_unreachable", "projector_started"),  # its seal first
    }
    processes = {}
    try:
        postgres_server.stop()
        try:
            processes = {role: pipeline.start(role) for role in waiting}
            for role, (unreachable, _) in waiting.items():
                processes[role].wait_for_log(unreachable, timeout=60)
            time.sleep(1)
            gone = exited(processes)
            assert not gone, f"exited while PostgreSQL was down: {gone}"
        finally:
            postgres_server.start()
        for role, (_, ready) in waiting.items():
            processes[role].wait_for_log(ready, timeout=60)
    finally:
        for process in processes.values():
            process.terminate(timeout=30)
