"""The stream's failure policy: which errors are retried, which set a record aside, which
stop the process; the bad item of a batch; reasons any store and header takes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import psycopg
import pytest
from eventsourcing import persistence as es
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
    UnknownProducerIdError,
)
from psycopg import errors as pg

from consumers.failure_policy import (
    REASON_MAX_CHARS,
    classify,
    is_transient,
    isolate_bad_items,
    storable_reason,
    storable_text,
)
from service.unit_of_work import ConcurrencyConflict


def _wrapped(wrapper: type[es.PersistenceError], cause: Exception) -> es.PersistenceError:
    """As eventsourcing raises it: its own class, the driver's error as the cause."""
    try:
        try:
            raise cause
        except Exception as error:
            raise wrapper(str(error)) from error
    except es.PersistenceError as wrapped:
        return wrapped


TRANSIENT: list[BaseException] = [
    sqlite3.OperationalError("database is locked"),
    sqlite3.OperationalError("database table is locked"),
    sqlite3.OperationalError("unable to open database file"),
    sqlite3.OperationalError("disk I/O error"),
    psycopg.OperationalError("connection failed: server closed the connection"),
    psycopg.InterfaceError("the connection is closed"),
    pg.AdminShutdown(),
    pg.CannotConnectNow(),
    pg.SerializationFailure(),
    pg.DeadlockDetected(),
    pg.UniqueViolation(),
    _wrapped(es.OperationalError, sqlite3.OperationalError("database is locked")),
    _wrapped(es.OperationalError, psycopg.OperationalError("server closed the connection")),
    es.IntegrityError("Failed to record tracking"),
    ConcurrencyConflict("gave up after 8 concurrent-update conflicts"),
    KafkaConnectionError(),
    NotLeaderForPartitionError(),
    UnknownProducerIdError(),
    KafkaError("connection lost mid-request"),
]

FATAL: list[BaseException] = [
    sqlite3.OperationalError("no such table: leadflow_ingest_ledger"),
    sqlite3.OperationalError("no such column: reason"),
    sqlite3.OperationalError("attempt to write a readonly database"),
    sqlite3.DatabaseError("database disk image is malformed"),
    sqlite3.DatabaseError("file is not a database"),
    _wrapped(es.OperationalError, sqlite3.OperationalError("no such table: stored_events")),
    _wrapped(es.OperationalError, sqlite3.OperationalError("attempt to write a readonly database")),
    _wrapped(es.ProgrammingError, pg.UndefinedTable()),
    pg.UndefinedTable(),
    pg.UndefinedColumn(),
    pg.InsufficientPrivilege(),
    pg.ReadOnlySqlTransaction(),
    pg.InvalidPassword(),
    es.OperationalError("Can't do multi-row tracking with single-row tracking table"),
    TopicAuthorizationFailedError(),
]

PERMANENT: list[BaseException] = [
    RuntimeError("a bug the record triggers"),
    ValueError("bad value"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    sqlite3.IntegrityError("NOT NULL constraint failed: t.c"),
    sqlite3.DataError("string or blob too big"),
    pg.StringDataRightTruncation(),
    pg.UntranslatableCharacter(),
    pg.NotNullViolation(),
    _wrapped(es.DataError, pg.CharacterNotInRepertoire()),
    MessageSizeTooLargeError(),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=repr)
def test_transient_failures_are_retried(error: BaseException) -> None:
    assert classify(error) == "transient"
    assert is_transient(error)


@pytest.mark.parametrize("error", FATAL, ids=repr)
def test_a_broken_store_is_never_retried_nor_blamed_on_a_record(error: BaseException) -> None:
    assert classify(error) == "fatal"
    assert not is_transient(error)


@pytest.mark.parametrize("error", PERMANENT, ids=repr)
def test_a_refused_value_is_the_records_fault(error: BaseException) -> None:
    assert classify(error) == "permanent"


def test_the_bad_item_is_set_aside_and_every_other_applies() -> None:
    tried: list[int] = []

    def attempt(items: Sequence[int]) -> list[str]:
        tried.append(len(items))
        if 6 in items:
            raise RuntimeError("boom\x00\nsecond line")
        return ["ok"] * len(items)

    results = isolate_bad_items(list(range(9)), attempt, lambda item, why: f"{item}: {why}")
    assert results == ["ok"] * 6 + ["6: RuntimeError: boom\\u0000 second line"] + ["ok"] * 2
    assert tried[0] == 9 and len(tried) <= 1 + 2 * 4


@pytest.mark.parametrize(
    "error", [sqlite3.OperationalError("database is locked"), pg.UndefinedTable()], ids=repr
)
def test_a_transient_or_fatal_failure_is_raised_not_isolated(error: Exception) -> None:
    def attempt(items: Sequence[int]) -> list[str]:
        raise error

    with pytest.raises(type(error)):
        isolate_bad_items([1, 2, 3], attempt, lambda item, why: why)


def test_a_clean_batch_is_tried_once() -> None:
    tried: list[Sequence[int]] = []

    def attempt(items: Sequence[int]) -> list[int]:
        tried.append(items)
        return list(items)

    assert isolate_bad_items([1, 2, 3], attempt, lambda item, why: -1) == [1, 2, 3]
    assert isolate_bad_items([], attempt, lambda item, why: -1) == []
    assert tried == [[1, 2, 3]]


@pytest.mark.parametrize(
    "text",
    ["ab\ud800", "nul\x00here", "\udfff\x00" * 5000, "x" * 100_000, "é ✓ 日本 \U0001f600"],
    ids=["surrogate", "nul", "both-long", "long", "unicode"],
)
def test_a_reason_is_always_storable_and_encodable(text: str) -> None:
    reason = storable_reason(text)
    assert "\x00" not in reason
    reason.encode("utf-8")  # raises on a lone surrogate
    assert len(reason) <= REASON_MAX_CHARS
    assert "\n" not in reason


def test_a_long_reason_says_it_was_cut() -> None:
    reason = storable_reason("x" * 100_000)
    assert reason.startswith("x" * 100)
    assert reason.endswith("[truncated, 100000 characters]")
    assert storable_reason("short reason") == "short reason"


def test_storable_text_keeps_what_it_can_and_escapes_the_rest() -> None:
    assert storable_text("ab\ud800") == "ab\\ud800"
    assert storable_text("a\x00b") == "a\\u0000b"
    assert storable_text("é ✓ 日本") == "é ✓ 日本"
    assert len(storable_text("y" * 10_000)) == 10_000  # not bounded: payloads stay whole
