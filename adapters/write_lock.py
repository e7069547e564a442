"""The lock that serialises writers of the PostgreSQL event store, without blocking vacuum.

Notification ids must commit in the order they are issued, or a reader tailing the log
passes over a gap that a slower transaction fills later; the audit chain needs its
writers one at a time as well. eventsourcing gets both with ``LOCK TABLE ... IN
EXCLUSIVE MODE`` on the events table, but that mode conflicts with the ``SHARE UPDATE
EXCLUSIVE`` lock of every vacuum and analyze: under a steady stream PostgreSQL
vacuums or analyzes the append-only table about every minute, and each time the writer waits
until the deadlock check cancels the vacuum (``deadlock_timeout``, 1 s by default), or
for the whole of an anti-wraparound vacuum, which is never cancelled.

Here writers take a transaction-scoped advisory lock named after the table instead,
which serialises them in the same way and conflicts with nothing else, after the
table's ``ROW EXCLUSIVE`` lock (which an insert takes anyway): that lock still
conflicts with the ``EXCLUSIVE`` lock of a writer running an older leadflow, so the two
kinds of writer also exclude each other during a rolling upgrade. A writer's transaction
is read committed whatever the server's or role's default, so that what it reads after
the lock (the audit chain's head, the latest versions) is what the writer before it
committed.
"""

from __future__ import annotations

import hashlib

from psycopg import sql


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock functions."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


def postgres_write_lock(schema: str, table: str, lock_timeout_seconds: int) -> list[sql.Composed]:
    """The statements a writer runs, in its transaction, before it inserts events (one
    at a time: eventsourcing runs its inserts in pipeline mode, which takes no
    multi-statement strings)."""
    key = advisory_key(f"leadflow.events_writer:{schema}.{table}")
    return [
        # first in the transaction: a default of repeatable read or serializable would take
        # the snapshot before the wait, and the writer would chain after a stale head
        sql.SQL("SET TRANSACTION ISOLATION LEVEL READ COMMITTED").format(),
        sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(lock_timeout_seconds)}s")),
        sql.SQL("LOCK TABLE {}.{} IN ROW EXCLUSIVE MODE").format(
            sql.Identifier(schema), sql.Identifier(table)
        ),
        sql.SQL("SELECT pg_advisory_xact_lock({})").format(sql.Literal(key)),
    ]
