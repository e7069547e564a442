"""How the stream processes (ingest, relay, projectors) treat a failure: transient
failures (a database or broker away, a concurrent writer) are retried with back-off;
anything else is permanent for the record at hand.
"""

from __future__ import annotations

import sqlite3

import psycopg
from eventsourcing import persistence as es
from kafka.errors import (
    CorruptRecordError,
    DuplicateSequenceNumberError,
    InvalidProducerEpochError,
    KafkaError,
    OutOfOrderSequenceNumberError,
    UnknownProducerIdError,
)

from adapters.kafka_topics import is_transient_kafka_error
from service.application import ConcurrencyConflict

_TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    es.OperationalError,
    es.InterfaceError,
    es.IntegrityError,
    sqlite3.OperationalError,
    ConcurrencyConflict,
    # an idempotent producer's sequence state lost (e.g. a broker restart): a new
    # producer starts afresh
    OutOfOrderSequenceNumberError,
    UnknownProducerIdError,
    InvalidProducerEpochError,
    DuplicateSequenceNumberError,
    CorruptRecordError,
)


def is_transient(error: BaseException) -> bool:
    """True for failures that go away by themselves (a database or broker away, a
    concurrent writer): retry. Anything else will fail the same way again."""
    if isinstance(error, _TRANSIENT):
        return True
    return isinstance(error, KafkaError) and is_transient_kafka_error(error)
