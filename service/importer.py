"""Bulk import: apply a JSON Lines file of commands, in order, idempotently.

Each non-blank line is one command object (see ``domain.commands``). A line without a
``command_id`` gets one from the fingerprint of the parsed command
(``service.command_fingerprint``: the same command written with ``Z`` or ``+00:00``, with
or without ``"actor": null``, is one command). Every command is recorded in the command
ledger with its outcome, so importing the same file again changes nothing: every line
that was applied is then reported as a duplicate, and every line that was refused is
rejected again with its original reason (two identical lines in one file are one
command: the second is a duplicate). A bad line
(not UTF-8, not JSON, not a valid command, refused by the domain) is rejected with its line
number and reason, and the import goes on unless ``strict``; so is a line beyond the
bounds of ``domain.input_limits`` (nested too deep, a number too long, a timestamp out of
range), never an abort.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import structlog
from pydantic import BaseModel, ValidationError, computed_field

from adapters.logging import error_kind
from domain.commands import COMMAND_ADAPTER, COMMAND_NAMES, Command
from domain.errors import DomainError
from domain.input_limits import JsonRefused, load_json
from service import command_fingerprint
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.service.importer")

_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class RejectedLine(BaseModel):
    line: int
    reason: str


class ImportReport(BaseModel):
    """What an import did. ``stopped_at``: the rejected line a strict import stopped at;
    ``aborted_at``: the line at which the store failed (nothing from there on was applied)."""

    applied: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[RejectedLine] = []
    stopped_at: int | None = None
    aborted_at: int | None = None
    seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return self.applied + self.duplicate + self.rejected

    @property
    def lines_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


class ImportAborted(Exception):
    """The store (not the input) failed; ``report`` holds what was done before ``line``."""

    def __init__(self, line: int, report: ImportReport, cause: BaseException) -> None:
        self.line = line
        self.report = report
        super().__init__(
            f"line {line}: {type(cause).__name__}: {cause}; "
            f"{report.applied} lines applied before it; importing the file again resumes "
            "(lines already applied count as duplicates)"
        )


class LineRejected(ValueError):
    """A line that is not a valid command."""


class _StoreFailed(Exception):
    def __init__(self, line: int, cause: Exception) -> None:
        self.line = line
        self.cause = cause


@dataclass
class _Line:
    number: int
    command: Command | None = None
    status: Literal["applied", "duplicate"] | None = None
    reason: str | None = None
    refusal: dict[str, str] | None = None  # what the log says of it: its kind, no input

    def refuse(self, reason: str, error: BaseException) -> _Line:
        self.reason, self.refusal = reason, error_kind(error)
        return self


ProgressCallback = Callable[[ImportReport], None]
BATCH_SIZE = 500


def import_commands(
    lines: Iterable[bytes | str],
    app: LeadflowApp,
    *,
    strict: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: ProgressCallback | None = None,
    source: str = "-",
) -> ImportReport:
    """Apply every line's command, in order, ``batch_size`` commands per transaction.

    ``lines`` may be a binary stream (e.g. ``sys.stdin.buffer``); line numbers count
    from 1 and include blank lines. ``strict`` stops at the first rejected line; the
    lines before it are applied. Errors of the store itself raise ``ImportAborted``.
    """
    report = ImportReport()
    started = time.monotonic()
    size = max(1, batch_size)
    batch: list[_Line] = []
    try:
        for number, raw in enumerate(lines, start=1):
            line = _read(number, raw)
            if line is None:
                continue
            if strict and line.reason is not None:
                _flush(batch, app, report, strict)
                batch = [] if report.rejected else [line]
                break
            batch.append(line)
            if len(batch) < size:
                continue
            _flush(batch, app, report, strict)
            batch = []
            if strict and report.rejected:
                break
            if progress is not None:
                report.seconds = time.monotonic() - started
                progress(report)
        _flush(batch, app, report, strict)
        if strict and report.rejected:
            report.stopped_at = report.rejections[0].line
    except _StoreFailed as failure:
        report.aborted_at = failure.line
        report.seconds = round(time.monotonic() - started, 3)
        log.error("import_aborted", source=source, line=failure.line, **error_kind(failure.cause))
        raise ImportAborted(failure.line, report, failure.cause) from failure.cause
    report.seconds = round(time.monotonic() - started, 3)
    log.info(
        "import_finished",
        source=source,
        lines_per_second=round(report.lines_per_second, 1),
        **report.model_dump(exclude={"rejections"}),
    )
    return report


def _read(number: int, raw: bytes | str) -> _Line | None:
    """The line's command, or its rejection; None for a blank line."""
    try:
        text = (raw if isinstance(raw, str) else _decode(raw, first=number == 1)).rstrip("\r\n")
        if not text.strip():
            return None
        return _Line(number, command=parse_line(text))
    except LineRejected as error:
        return _Line(number).refuse(str(error), error)
    except ValidationError as error:
        return _Line(number).refuse(describe_validation_error(error), error)


def _flush(batch: list[_Line], app: LeadflowApp, report: ImportReport, strict: bool) -> None:
    try:
        _run(app, [line for line in batch if line.command is not None], strict)
    except _StoreFailed as failure:
        _tally(report, [line for line in batch if line.number < failure.line])
        raise
    _tally(report, batch)


def _run(app: LeadflowApp, lines: list[_Line], strict: bool) -> None:
    """Apply the lines' commands in one transaction; if that fails, one by one.

    ``strict`` ends the batch at the first refused command: later lines stay unapplied.
    """
    if not lines:
        return
    commands = [line.command for line in lines if line.command is not None]
    try:
        results = app.handle_many(commands, stop_at_refusal=strict)
    except Exception as error:
        if len(lines) > 1:
            for line in lines:
                _run(app, [line], strict)
                if strict and line.reason is not None:
                    return
            return
        if isinstance(error, ValidationError):
            lines[0].refuse(describe_validation_error(error), error)
            return
        raise _StoreFailed(lines[0].number, error) from error
    for line, result in zip(lines, results, strict=not strict):
        if isinstance(result, DomainError):
            line.refuse(str(result), result)
        else:
            line.status = result.status


def _tally(report: ImportReport, lines: list[_Line]) -> None:
    for line in lines:
        if line.reason is not None:
            report.rejected += 1
            report.rejections.append(RejectedLine(line=line.number, reason=line.reason))
            log.debug("line_rejected", line=line.number, **(line.refusal or {}))
        elif line.status == "applied":
            report.applied += 1
        elif line.status == "duplicate":
            report.duplicate += 1


def _decode(raw: bytes, *, first: bool) -> str:
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        bad = error.object[error.start]
        msg = f"not UTF-8: {error.reason}: byte 0x{bad:02x} at byte {error.start + 1}"
        raise LineRejected(msg) from None


def parse_line(text: str) -> Command:
    """One line's command; a line without ``command_id`` gets the hash of its content."""
    try:
        data: Any = load_json(text)
    except json.JSONDecodeError as error:
        raise LineRejected(f"not JSON: {error.msg} at column {error.colno}") from None
    except JsonRefused as error:
        raise LineRejected(str(error)) from None
    if not isinstance(data, dict):
        raise LineRejected(f"not a JSON object: the line is {_JSON_TYPE_NAMES[type(data)]}")
    command: Command = COMMAND_ADAPTER.validate_python(data)
    refusal = command_fingerprint.sent_id_refusal(command.command_id)
    if refusal is not None:
        raise LineRejected(refusal)
    if command.command_id is None:
        command_id = command_fingerprint.content_command_id(command)
        command = command.model_copy(update={"command_id": command_id})
    return command


def content_command_id(data: dict[str, Any]) -> str:
    """The id a command object without ``command_id`` gets: its parsed command's
    fingerprint (``service.command_fingerprint``)."""
    command: Command = COMMAND_ADAPTER.validate_python({**data, "command_id": None})
    return command_fingerprint.content_command_id(command)


def describe_validation_error(error: ValidationError) -> str:
    """Every problem of a command object on one line: ``where: what`` joined by ``; ``."""
    expected = ", ".join(COMMAND_NAMES)
    problems = []
    for item in error.errors(include_url=False):
        if item["type"] == "union_tag_invalid":
            tag = item.get("ctx", {}).get("tag")
            problems.append(f"unknown command {tag!r}; expected one of: {expected}")
        elif item["type"] == "union_tag_not_found":
            problems.append(f'no "command" field; expected one of: {expected}')
        else:
            where = ".".join(str(part) for part in item["loc"]) or "line"
            problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


class ProgressPrinter:
    """Prints progress at most once per ``interval`` seconds.

    On a terminal one line is rewritten in place; otherwise each update is its own line.
    """

    def __init__(self, stream: TextIO, *, interval: float = 1.0) -> None:
        self._stream = stream
        self._interval = interval
        self._in_place = stream.isatty()
        self._next = time.monotonic() + interval
        self._printed = False

    def __call__(self, report: ImportReport) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        line = (
            f"{report.total:,} lines ({report.applied:,} applied, {report.duplicate:,} "
            f"duplicate, {report.rejected:,} rejected), {report.lines_per_second:,.0f} lines/s"
        )
        self._stream.write(f"\r{line}\x1b[K" if self._in_place else f"{line}\n")
        self._stream.flush()
        self._printed = True

    def close(self) -> None:
        if self._in_place and self._printed:
            self._stream.write("\n")
            self._stream.flush()
