"""What a database driver's error says about trying again: ``transient`` (the database is
away, busy or lost a race: retry with back-off), ``permanent`` (the value at hand is
refused: the record carrying it is bad) or ``fatal`` (the store itself is wrong: a table
missing, read-only, corrupt, no permission; neither retrying nor skipping records helps).

Covers sqlite3, psycopg and eventsourcing's wrappers of both (judged by the driver error
they wrap).
"""

from __future__ import annotations

import sqlite3
from typing import Literal

import psycopg
from eventsourcing import persistence as es

Failure = Literal["transient", "permanent", "fatal"]

# sqlite3.OperationalError covers both a busy database and a broken schema: only these
# messages go away by themselves
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o error", "disk is full")
# SQLSTATE classes and codes that go away by themselves: connection exception, transaction
# rollback (serialization, deadlock), insufficient resources, operator intervention,
# system error (I/O), lock not available, object in use, unique violation (a concurrent
# writer got there first)
_PG_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_PG_TRANSIENT_CODES = ("55P03", "55006", "23505")
# data exception, integrity constraint, program limit: the value is refused
_PG_PERMANENT_CLASSES = ("22", "23", "54")


def driver_failure(error: BaseException) -> Failure | None:
    """The kind of a database driver's failure; None for anything else."""
    if isinstance(error, es.PersistenceError):
        cause = error.__cause__
        if isinstance(cause, sqlite3.Error | psycopg.Error):
            return driver_failure(cause)
        # raised by eventsourcing itself: a lost race, or a set-up it cannot work with
        return "transient" if isinstance(error, es.IntegrityError) else "fatal"
    if isinstance(error, sqlite3.Error):
        return _sqlite_failure(error)
    if isinstance(error, psycopg.Error):
        return _postgres_failure(error)
    return None


def _sqlite_failure(error: sqlite3.Error) -> Failure:
    if isinstance(error, sqlite3.OperationalError):
        text = str(error).lower()
        return "transient" if any(m in text for m in _SQLITE_TRANSIENT) else "fatal"
    if isinstance(error, sqlite3.IntegrityError):
        return "transient" if "unique" in str(error).lower() else "permanent"
    if isinstance(error, sqlite3.DataError | sqlite3.InterfaceError | sqlite3.ProgrammingError):
        return "permanent"
    return "fatal"  # DatabaseError: "database disk image is malformed", "file is not a database"


def _postgres_failure(error: psycopg.Error) -> Failure:
    state = error.sqlstate
    if state is None:  # no answer from the server: the connection failed or was lost
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return "transient"
        return "permanent" if isinstance(error, psycopg.DataError) else "fatal"
    if state.startswith(_PG_TRANSIENT_CLASSES) or state in _PG_TRANSIENT_CODES:
        return "transient"
    if state.startswith(_PG_PERMANENT_CLASSES):
        return "permanent"
    return "fatal"  # e.g. undefined table, insufficient privilege, read-only transaction
