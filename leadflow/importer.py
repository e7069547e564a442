"""Bulk import: apply a JSON Lines file of commands, in order, idempotently.

Each non-blank line is one command object (see ``domain.commands``). A line without a
``command_id`` gets one from a hash of its canonical JSON, so importing the same file again
changes nothing: every line that was applied is then reported as a duplicate. A bad line
(not UTF-8, not JSON, not a valid command, refused by the domain) is rejected with its line
number and reason, and the import goes on unless ``strict``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

import structlog
from pydantic import BaseModel, ValidationError, computed_field

from domain.application import LeadflowApp
from domain.commands import COMMAND_ADAPTER, COMMAND_NAMES, Command
from domain.errors import DomainError

log = structlog.get_logger("leadflow.importer")

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
    """What an import did; ``stopped_at`` is the line a strict import stopped at."""

    applied: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[RejectedLine] = []
    stopped_at: int | None = None
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


ProgressCallback = Callable[[ImportReport], None]


def import_commands(
    lines: Iterable[bytes | str],
    app: LeadflowApp,
    *,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    source: str = "-",
) -> ImportReport:
    """Apply every line's command through ``app.handle``, in order.

    ``lines`` may be a binary stream (e.g. ``sys.stdin.buffer``); line numbers count
    from 1 and include blank lines. Errors of the store itself raise ``ImportAborted``.
    """
    report = ImportReport()
    started = time.monotonic()
    for number, raw in enumerate(lines, start=1):
        try:
            text = (raw if isinstance(raw, str) else _decode(raw, first=number == 1)).rstrip("\r\n")
            if not text.strip():
                continue
            command = parse_line(text)
            outcome = app.handle(command)
        except (LineRejected, DomainError) as error:
            _reject(report, number, str(error))
        except ValidationError as error:
            _reject(report, number, describe_validation_error(error))
        except Exception as error:
            report.seconds = time.monotonic() - started
            raise ImportAborted(number, report, error) from error
        else:
            if outcome.status == "applied":
                report.applied += 1
            else:
                report.duplicate += 1
        if strict and report.rejected:
            report.stopped_at = number
            break
        if progress is not None:
            report.seconds = time.monotonic() - started
            progress(report)
    report.seconds = round(time.monotonic() - started, 3)
    log.info(
        "import_finished",
        source=source,
        applied=report.applied,
        duplicate=report.duplicate,
        rejected=report.rejected,
        total=report.total,
        stopped_at=report.stopped_at,
        seconds=report.seconds,
        lines_per_second=round(report.lines_per_second, 1),
    )
    return report


def _reject(report: ImportReport, number: int, reason: str) -> None:
    report.rejected += 1
    report.rejections.append(RejectedLine(line=number, reason=reason))
    log.debug("line_rejected", line=number, reason=reason)


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
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise LineRejected(f"not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(data, dict):
        raise LineRejected(f"not a JSON object: the line is {_JSON_TYPE_NAMES[type(data)]}")
    if data.get("command_id") is None:
        data["command_id"] = content_command_id(data)
    command: Command = COMMAND_ADAPTER.validate_python(data)
    return command


def content_command_id(data: dict[str, Any]) -> str:
    """A stable id for a command object: the hash of its canonical JSON (sorted keys)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
