"""The servers a run needs: the ones named in the environment, or throwaway local ones.

``LEADFLOW_POSTGRES_DSN`` / ``LEADFLOW_KAFKA_BOOTSTRAP`` (read through the composition
root) name servers to use as they are.
Otherwise the runner starts its own with ``deploy/`` (in ``.run/benchmarks/``) and
destroys it when the run ends, even when a benchmark fails.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from deploy._common import RUN_DIR, claim
from leadflow.bootstrap import load_settings

log = structlog.get_logger("leadflow.benchmarks.servers")

WORK_ROOT = RUN_DIR / "benchmarks"


def _work_dir(prefix: str) -> Path:
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=WORK_ROOT))
    claim(work_dir)
    return work_dir


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL DSN; raises deploy's ServerStartError when none can be started."""
    given = load_settings().store.dsn
    if given:
        log.info("benchmark_postgres_given", source="LEADFLOW_POSTGRES_DSN")
        yield given
        return
    from deploy.postgres.server import PostgresServer  # noqa: PLC0415 - only when needed

    server = PostgresServer(_work_dir("postgres-"))
    try:
        server.start()
        yield server.dsn
    finally:
        server.destroy()


@contextmanager
def kafka() -> Iterator[str]:
    """A Kafka bootstrap address; raises deploy's ServerStartError when none can be started."""
    given = load_settings().kafka.bootstrap
    if given:
        log.info("benchmark_kafka_given", bootstrap=given)
        yield given
        return
    from deploy.kafka.broker import Broker  # noqa: PLC0415 - only when needed

    broker = Broker(_work_dir("kafka-"))
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.destroy()
