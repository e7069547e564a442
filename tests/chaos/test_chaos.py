"""Chaos: the pipeline keeps every promise while its processes, the broker and the
database are killed under load. Seeded; ``LEADFLOW_CHAOS_SEED=N`` repeats a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.kafka.broker import Broker
from deploy.postgres.server import PostgresServer
from tests.chaos.harness import Chaos, ChaosConfig, chaos_seed

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.postgres
def test_nothing_is_lost_or_double_counted_under_chaos_on_postgresql(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_broker: Broker | None,
    postgres_dsn: str,
    postgres_server: PostgresServer | None,
) -> None:
    chaos = Chaos(
        tmp_path,
        kafka_bootstrap,
        postgres_dsn,
        seed=chaos_seed(),
        broker=kafka_broker,
        postgres=postgres_server,
        config=ChaosConfig(duration=45),
    )
    report = chaos.run()
    assert report.ok, report.text()
    print(report.text())


def test_nothing_is_lost_or_double_counted_under_chaos_on_sqlite(
    tmp_path: Path, kafka_bootstrap: str, kafka_broker: Broker | None
) -> None:
    chaos = Chaos(
        tmp_path,
        kafka_bootstrap,
        None,
        seed=chaos_seed(),
        broker=kafka_broker,
        config=ChaosConfig(duration=30, import_lines=700, import_batches=7, kills_each=2),
    )
    report = chaos.run()
    assert report.ok, report.text()
    print(report.text())
