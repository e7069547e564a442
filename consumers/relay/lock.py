"""One active relay per event store: whoever holds the lock publishes, the others wait.

SQLite: an ``fcntl`` lock on a file beside the database. PostgreSQL: a session advisory
lock on a dedicated connection. Either is released by the operating system or the
server when its holder dies, even by SIGKILL, so a standby takes over. A PostgreSQL lock
also vanishes when its connection drops; ``still_held`` notices, and the relay stops
publishing until it holds the lock again. Until it notices (a relay cut off from the
server: about 11 s) the fencing epoch stops it (``consumers.relay.position``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog

from adapters.event_store import connect_postgres
from adapters.private_files import PRIVATE_FILE, private_dir
from adapters.write_lock import advisory_key

log = structlog.get_logger("leadflow.relay_lock")

# Server-side TCP keepalives: a relay cut off by the network loses the lock in ~11 s.
_KEEPALIVE_SETTINGS = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


class RelayLock(Protocol):
    description: str
    problem: str | None
    """Why the last ``try_acquire`` failed, when it was not just another holder."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks."""

    def still_held(self) -> bool:
        """False once the lock is lost (PostgreSQL: the connection dropped)."""

    def release(self) -> None: ...


class FileRelayLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self.problem: str | None = None
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PostgresRelayLock:
    def __init__(self, dsn: str, schema: str) -> None:
        self._dsn = dsn
        self.key = advisory_key(f"leadflow.relay:{schema}")
        self.description = f"advisory lock {self.key} (schema {schema})"
        self.problem: str | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None and self.still_held():
            return True
        try:
            conn = connect_postgres(self._dsn)
        except psycopg.Error as error:
            self.problem = f"cannot connect: {' '.join(str(error).split())}"
            return False
        try:
            for statement in _KEEPALIVE_SETTINGS:
                conn.execute(statement.encode())
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error as error:
            self.problem = f"cannot take the lock: {' '.join(str(error).split())}"
            conn.close()
            return False
        self.problem = None
        if not (row and row[0]):
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as error:
            log.warning("relay_lock_connection_lost", lock=self.description, error=str(error))
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(psycopg.Error):
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
