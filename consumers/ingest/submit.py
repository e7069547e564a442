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

from consumers.contracts.engagement import EngagementRecordV1, InvalidEngagement
from consumers.ingest.apply import IngestLimits, apply_isolating
from service.application import LeadflowApp

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
        except (ValueError, RecursionError):  # judged line by line, each on its own
            whole = None
        if isinstance(whole, dict):
            leading = payload[: len(payload) - len(payload.lstrip())]
            yield leading.count(b"\n") + 1, stripped
            return
    for number, line in enumerate(payload.split(b"\n"), start=1):
        record = line.strip()
        if record:
            yield number, record


def submit_payload(
    app: LeadflowApp, payload: bytes, limits: IngestLimits, chunk: int = 500
) -> list[SubmitResult]:
    """Judge and apply every record of the payload, ``chunk`` records per transaction."""
    results: list[SubmitResult] = []
    pieces = list(split_records(payload))
    for start in range(0, len(pieces), chunk):
        results.extend(_submit_chunk(app, pieces[start : start + chunk], limits))
    log.debug(
        "engagements_submitted",
        records=len(results),
        accepted=sum(r.status == "accepted" for r in results),
        duplicate=sum(r.status == "duplicate" for r in results),
        invalid=sum(r.status == "invalid" for r in results),
    )
    return results


def _submit_chunk(
    app: LeadflowApp, pieces: list[tuple[int, bytes]], limits: IngestLimits
) -> list[SubmitResult]:
    parsed: list[EngagementRecordV1 | InvalidEngagement] = []
    for _, raw in pieces:
        try:
            parsed.append(limits.parse(raw))
        except InvalidEngagement as bad:
            parsed.append(bad)
    valid = [(p, f"engage:{p.event_id}") for p in parsed if isinstance(p, EngagementRecordV1)]
    applied = iter(apply_isolating(app, valid, SUBMIT_ACTOR))
    results = []
    for (line, _), item in zip(pieces, parsed, strict=True):
        verdict = item if isinstance(item, InvalidEngagement) else next(applied)
        event_id = item.event_id if isinstance(item, EngagementRecordV1) else None
        if isinstance(verdict, InvalidEngagement):
            log.debug("engagement_invalid", line=line, problem=verdict.problem)
            results.append(SubmitResult(line, "invalid", event_id, verdict.reason))
        else:
            status: Literal["accepted", "duplicate"] = (
                "accepted" if verdict == "applied" else "duplicate"
            )
            results.append(SubmitResult(line, status, event_id))
    return results
