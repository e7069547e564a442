"""Session fixtures for the real Kafka broker and the real PostgreSQL server.

Both are lazy: nothing starts unless a test asks for it. With
``LEADFLOW_KAFKA_BOOTSTRAP`` / ``LEADFLOW_POSTGRES_DSN`` set, those servers are
used instead and ``kafka_broker`` / ``postgres_server`` are None (no restarts).
A server that cannot start skips its tests loudly, or fails them when ``CI=true``.
These fixtures never write to ``os.environ``: tests pass settings explicitly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from deploy._common import RUN_DIR, ServerStartError, claim, reap_orphans
from deploy.kafka.broker import Broker
from deploy.postgres.server import PostgresServer

SESSION_ROOT = RUN_DIR / "pytest"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(what: str, exc: BaseException) -> NoReturn:
    message = f"{what} COULD NOT BE STARTED, so its tests cannot run: {exc}"
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _kill_orphan(work_dir: Path) -> None:
    if work_dir.name.startswith("kafka-"):
        Broker(work_dir).kill()
    elif work_dir.name.startswith("postgres-"):
        PostgresServer(work_dir).kill()


@pytest.fixture(scope="session")
def _infra_root() -> Path:
    """Where this session's servers live; servers of killed earlier sessions are reaped."""
    SESSION_ROOT.mkdir(parents=True, exist_ok=True)
    reap_orphans(SESSION_ROOT, _kill_orphan)
    return SESSION_ROOT


def _work_dir(root: Path, prefix: str) -> Path:
    work_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    claim(work_dir)
    return work_dir


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[Broker | None]:
    """The broker this session started, or None when LEADFLOW_KAFKA_BOOTSTRAP is set."""
    if os.environ.get("LEADFLOW_KAFKA_BOOTSTRAP"):
        yield None
        return
    root: Path = request.getfixturevalue("_infra_root")
    broker = Broker(_work_dir(root, "kafka-"))
    try:
        broker.start()
    except ServerStartError as exc:
        broker.destroy()
        _unavailable("Apache Kafka broker (deploy/kafka/broker.py)", exc)
    yield broker
    broker.destroy()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker | None) -> str:
    """``host:port`` of a real Kafka broker."""
    if kafka_broker is not None:
        return kafka_broker.bootstrap
    return os.environ["LEADFLOW_KAFKA_BOOTSTRAP"]


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer | None]:
    """The server this session started, or None when LEADFLOW_POSTGRES_DSN is set."""
    if os.environ.get("LEADFLOW_POSTGRES_DSN"):
        yield None
        return
    root: Path = request.getfixturevalue("_infra_root")
    server = PostgresServer(_work_dir(root, "postgres-"))
    try:
        server.start()
    except ServerStartError as exc:
        server.destroy()
        _unavailable("PostgreSQL server (deploy/postgres/server.py)", exc)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer | None) -> str:
    """A DSN (``postgresql://leadflow:leadflow@127.0.0.1:PORT/leadflow``) of a real PostgreSQL."""
    if postgres_server is not None:
        return postgres_server.dsn
    return os.environ["LEADFLOW_POSTGRES_DSN"]
