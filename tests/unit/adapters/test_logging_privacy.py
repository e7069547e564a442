"""Log lines say what failed and where, never the input a message may quote."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog
from pydantic import BaseModel, ValidationError

from adapters.logging import configure_logging, error_kind

SECRET = "ada.lovelace@example.com"


class Contact(BaseModel):
    channel: int


def invalid() -> ValidationError:
    try:
        Contact.model_validate({"channel": SECRET})
    except ValidationError as error:
        return error
    raise AssertionError("the model took a text as a number")


def test_error_kind_names_the_type_and_the_field_but_not_the_value() -> None:
    error = invalid()
    assert SECRET in str(error)  # pydantic quotes the input
    assert error_kind(error) == {"error_kind": "ValidationError", "field": "channel"}
    assert error_kind(KeyError(SECRET)) == {"error_kind": "KeyError"}


def test_a_logged_traceback_keeps_frames_and_types_without_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging("debug", "json")
    try:
        try:
            raise ValueError(SECRET)
        except ValueError as cause:
            raise RuntimeError(f"while handling {SECRET}") from cause
    except RuntimeError as error:
        structlog.get_logger("test").error("failed", exc_info=error)
        structlog.get_logger("test").debug("failed_again", exc_info=True)
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert len(lines) == 2 and SECRET not in stderr.getvalue()
    for line in lines:
        trace = line["exception"]
        assert "test_logging_privacy.py" in trace
        assert trace.index("ValueError") < trace.index("RuntimeError")
