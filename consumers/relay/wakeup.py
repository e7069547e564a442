"""How the relay learns that new events were stored.

PostgreSQL: LISTEN on the channel eventsourcing NOTIFYs in every insert transaction,
so the relay wakes within milliseconds. SQLite has no notifications: short polling.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Protocol

import psycopg
import structlog
from psycopg import sql

from adapters.event_store import connect_postgres

log = structlog.get_logger("leadflow.relay_wakeup")

_LISTEN_SLICE = 0.25  # seconds; bounds how long a stop request waits


class NewEventsSignal(Protocol):
    def wait(self, stop: threading.Event) -> None:
        """Return when new events may have been stored, after a short timeout, or on stop."""

    def close(self) -> None: ...


class Polling:
    def __init__(self, interval: float) -> None:
        self.interval = interval

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.interval)

    def close(self) -> None:
        pass


class PostgresListener:
    """LISTEN on its own connection; reconnects lazily when the connection drops."""

    def __init__(self, dsn: str, channel: str, fallback_interval: float) -> None:
        self._dsn = dsn
        self.channel = channel
        self._fallback = fallback_interval
        self._conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect_postgres(self._dsn)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        return conn

    def wait(self, stop: threading.Event) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
                return  # events may have been stored before LISTEN: look once more
            for _ in self._conn.notifies(timeout=_LISTEN_SLICE, stop_after=1):
                pass
        except psycopg.Error as error:
            log.warning("relay_listen_failed", channel=self.channel, error=str(error))
            self.close()
            stop.wait(self._fallback)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
