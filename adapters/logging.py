"""structlog set-up: JSON lines when not on a terminal, readable console output on one.

Log lines carry ids (lead, deal and aggregate UUIDs, command and event ids, positions,
offsets), never personal data: no emails, names, titles, phone numbers, BANT answers,
contact outcomes, reasons or properties. An error message may quote the input it
refuses, so a log line names the error's kind and where (``error_kind``), and a logged
traceback has its frames and exception types but not their messages.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog
from pydantic import ValidationError

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Configure structlog once per process; log lines go to stderr."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _traceback_without_messages,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        # look sys.stderr up on every call: tests and daemons may swap it after set-up
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def error_text(error: BaseException) -> str:
    """``Type: message`` on one line, for a log field or a reason."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def error_kind(error: BaseException) -> dict[str, str]:
    """Log fields for an error whose message may quote its input (a refused command, an
    invalid record or event): its type and, for invalid input, the field at fault."""
    fields = {"error_kind": type(error).__name__}
    if isinstance(error, ValidationError) and error.error_count():
        where = error.errors(include_url=False)[0]["loc"]
        fields["field"] = ".".join(str(part) for part in where) or "input"
    return fields


def _traceback_without_messages(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """``exc_info=`` as ``exception``: the frames and types of the exception chain."""
    exc_info = event.pop("exc_info", None)
    error = sys.exc_info()[1] if exc_info is True else exc_info
    if isinstance(error, tuple):
        error = error[1]
    if isinstance(error, BaseException):
        event["exception"] = _frames(error)
    return event


def _frames(error: BaseException) -> str:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return "-- which led to --\n".join(
        "".join(traceback.format_tb(e.__traceback__))
        + f"{type(e).__qualname__} (message not logged)\n"
        for e in reversed(chain)
    )
