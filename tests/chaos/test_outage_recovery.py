"""Single-fault reproductions of what the chaos runs found: one outage, one process.

``leadflow ingest`` keeps one plain PostgreSQL connection for its ledger (``StoreDb``,
opened once in ``EngagementIngest._run``). After PostgreSQL restarts, that connection is
gone for good: every batch then stores its engagements, publishes its dead letters, fails
writing the ledger ("the connection is lost"), rewinds and starts over, forever. Offsets
are never committed again, dead letters are published again on every retry, and the
ledger stops counting.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from deploy.postgres.server import PostgresServer
from tests.chaos.engagement_load import EngagementLoad, EngagementPlan
from tests.chaos.journal import Journal
from tests.e2e.pipeline import TRANSIENT, Pipeline

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


@pytest.mark.xfail(
    strict=True,
    reason="BUG (reported): the ingest's ledger connection (StoreDb) never reconnects "
    "after PostgreSQL restarts, so the ingest retries its batch forever",
)
def test_ingest_keeps_going_after_postgresql_restarts(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_dsn: str,
    postgres_server: PostgresServer | None,
) -> None:
    if postgres_server is None:
        pytest.skip("external PostgreSQL (LEADFLOW_POSTGRES_DSN): not ours to restart")
    pipeline = Pipeline(tmp_path, kafka_bootstrap, postgres_dsn)
    pipeline.ensure_engagement_topic()
    plan = EngagementPlan(random.Random(3), leads=20)
    load = EngagementLoad(
        kafka_bootstrap, pipeline.setup.stream.engagement_topic, plan, 20, Journal()
    )
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
        sent = len(plan.catalog)
        assert ingest.process.poll() is None, "the ingest rode out the restart"
        assert wait_judged(pipeline, sent, 30) == sent, (
            f"the ingest judged {judged(pipeline)} of {sent} records after PostgreSQL "
            f"restarted; its log: {ingest.log_path}"
        )
    finally:
        load.close()
        ingest.terminate(timeout=30)
