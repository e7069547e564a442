"""Pieces of the relay tests: a relay running in a thread of the test, a broker the test
may crash, its lock session ended from the server's side, raw events crafted into the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from adapters.stopping import ProcessStop
from adapters.write_lock import advisory_key
from consumers.relay.lock import RelayLock
from consumers.relay.publisher import Relay
from deploy.kafka.broker import Broker
from service.application import LeadflowApp
from tests.integration.consumers.stream_helpers import StreamSetup, stream_setup


@contextmanager
def running_relay(setup: StreamSetup, lock: RelayLock | None = None) -> Iterator[Relay]:
    """``setup``'s relay publishing in a thread (``lock``: instead of its own)."""
    app = setup.open_app("relay")
    stop = ProcessStop()
    relay = setup.relay(app, stop=stop)
    if lock is not None:
        relay.lock = lock
    thread = threading.Thread(target=relay.run, name="relay")
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(timeout=60)
        app.close()
    assert not thread.is_alive()


def caught_up(relay: Relay, app: LeadflowApp) -> bool:
    return relay.stats.position >= (app.recorder.max_notification_id() or 0)


def insert_raw(app: LeadflowApp, stored: StoredEvent) -> int:
    """Store ``stored`` as it is, past every check of the application; its notification id."""
    app.recorder.insert_events([stored])
    return app.recorder.max_notification_id() or 0


def crash_setup(tmp_path: Path, kafka_broker: Broker | None, **stream: Any) -> StreamSetup:
    """A setup on the session's own broker (which the test may kill and start again), with
    short send timeouts and back-off, and ``stream`` settings on top."""
    if kafka_broker is None:
        pytest.skip("external Kafka (LEADFLOW_KAFKA_BOOTSTRAP): not ours to restart")
    setup = stream_setup(tmp_path, kafka_broker.bootstrap)
    update = {"send_timeout_seconds": 5.0, "retry_max_seconds": 1.0, **stream}
    setup.stream = setup.stream.model_copy(update=update)
    return setup


def end_lock_session(dsn: str, schema: str) -> list[tuple[bool]]:
    """End the PostgreSQL session holding the relay lock of ``schema`` (as a network cut
    does, seen from the server); one ``(True,)`` per session ended."""
    key = advisory_key(f"leadflow.relay:{schema}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchall()
