"""``leadflow engage``: the engagement payload without Kafka, same validation, same commands.

The input is one JSON object (possibly spread over several lines) or JSON Lines (one
record per line; blank lines are skipped). Every record is judged on its own; an
invalid one is reported with its line number and does not stop the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import structlog

from consumers.engagement_ingest import IngestLimits, apply_engagement
from consumers.engagement_record import InvalidEngagement
from domain.application import LeadflowApp

log = structlog.get_logger("leadflow.engagement_submit")

SUBMIT_ACTOR = "cli:engage"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    line: int
    status: Literal["accepted", "duplicate", "invalid"]
    event_id: str | None = None
    reason: str | None = None


def split_records(payload: bytes) -> Iterator[tuple[int, bytes]]:
    """(first line number, record bytes): the whole payload when it is one JSON object."""
    stripped = payload.strip()
    if stripped.startswith(b"{") and b"\n" in stripped:
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if isinstance(whole, dict):
            leading = payload[: len(payload) - len(payload.lstrip())]
            yield leading.count(b"\n") + 1, stripped
            return
    for number, line in enumerate(payload.split(b"\n"), start=1):
        record = line.strip()
        if record:
            yield number, record


def submit_payload(app: LeadflowApp, payload: bytes, limits: IngestLimits) -> list[SubmitResult]:
    results: list[SubmitResult] = []
    for line, raw in split_records(payload):
        event_id = None
        try:
            record = limits.parse(raw)
            event_id = record.event_id
            fact = apply_engagement(app, record, f"engage:{record.event_id}", SUBMIT_ACTOR)
        except InvalidEngagement as bad:
            log.warning("engagement_invalid", line=line, problem=bad.problem, reason=bad.reason)
            results.append(SubmitResult(line, "invalid", event_id, bad.reason))
            continue
        status: Literal["accepted", "duplicate"] = "accepted" if fact == "applied" else "duplicate"
        results.append(SubmitResult(line, status, event_id))
    return results
