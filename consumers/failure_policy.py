"""How the stream processes (ingest, relay, projectors) treat a failure, in one place.

``classify`` says what an error means for the record at hand:

- ``transient``: it goes away by itself (a database or broker away or busy, a concurrent
  writer): retry with back-off, never skip;
- ``permanent``: this record cannot be processed (a value refused, a bug it triggers):
  set it aside (``isolate_bad_items``), dead-letter it with its reason
  (``storable_reason``) and move on;
- ``fatal``: the process's own set-up is wrong (a table missing, a read-only or corrupt
  database, no permission): stop and say why; retrying cannot help and dead-lettering
  would throw good records away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog
from kafka.errors import (
    AuthorizationError,
    CorruptRecordError,
    DuplicateSequenceNumberError,
    InvalidProducerEpochError,
    KafkaError,
    OutOfOrderSequenceNumberError,
    SaslAuthenticationFailedError,
    UnknownProducerIdError,
)

from adapters.batch_isolation import isolate
from adapters.driver_failures import Failure, driver_failure
from adapters.kafka_topics import is_transient_kafka_error
from adapters.logging import error_kind, error_text
from adapters.storable_text import REASON_MAX_CHARS, storable_reason, storable_text
from service.unit_of_work import ConcurrencyConflict

__all__ = [
    "REASON_MAX_CHARS",
    "Failure",
    "ReportedFailure",
    "classify",
    "is_transient",
    "isolate_bad_items",
    "storable_reason",
    "storable_text",
]

log = structlog.get_logger("leadflow.failure_policy")

T = TypeVar("T")
R = TypeVar("R")

_KAFKA_TRANSIENT: tuple[type[KafkaError], ...] = (
    # an idempotent producer's sequence state lost (e.g. a broker restart): a new
    # producer starts afresh
    OutOfOrderSequenceNumberError,
    UnknownProducerIdError,
    InvalidProducerEpochError,
    DuplicateSequenceNumberError,
    CorruptRecordError,
)
_KAFKA_FATAL: tuple[type[KafkaError], ...] = (AuthorizationError, SaslAuthenticationFailedError)


class ReportedFailure(Exception):
    """A failure another process met and classified (it cannot send the error itself:
    a driver's error does not cross a pipe whole)."""

    def __init__(self, failure: Failure, text: str) -> None:
        super().__init__(text)
        self.failure: Failure = failure


def classify(error: BaseException) -> Failure:
    """``transient``, ``permanent`` or ``fatal`` (see the module's docstring)."""
    if isinstance(error, ReportedFailure):
        return error.failure
    if isinstance(error, ConcurrencyConflict):
        return "transient"
    if isinstance(error, KafkaError):
        if isinstance(error, _KAFKA_TRANSIENT) or is_transient_kafka_error(error):
            return "transient"
        return "fatal" if isinstance(error, _KAFKA_FATAL) else "permanent"
    return driver_failure(error) or "permanent"


def is_transient(error: BaseException) -> bool:
    """True for failures that go away by themselves: retry. Anything else fails the same
    way again."""
    return classify(error) == "transient"


def isolate_bad_items(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], list[R]],
    set_aside: Callable[[T, str], R],
) -> list[R]:
    """``attempt(items)`` (one result per item, in order), narrowing a ``permanent``
    failure down to the single item causing it: that item's result is
    ``set_aside(item, reason)`` with a storable reason, and every other item is attempted
    again without it. A transient or fatal failure is raised (retry, or stop)."""

    def split(size: int, error: Exception) -> None:
        log.warning("batch_split", items=size, **error_kind(error))

    return isolate(
        items,
        attempt,
        lambda item, error: set_aside(item, storable_reason(error_text(error))),
        is_items_fault=lambda error: classify(error) == "permanent",
        on_split=split,
    )
