"""Engagement records for the tests: valid ones, and every kind of bad input the issue names."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from consumers.ingest.ledger import IngestCounts
from domain.scoring import ENGAGEMENT_KINDS

PAST = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    value: bytes | None
    expect: str  # "valid" or the InvalidEngagement problem
    key: bytes | None = b"k"
    label: str = ""
    event_id: str | None = None
    lead: str | None = None


def valid_record(
    event_id: str, email: str, kind: str = "page_view", **extra: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": event_id,
        "email": email,
        "kind": kind,
        "occurred_at": (PAST + timedelta(minutes=len(event_id))).isoformat(),
    }
    record.update(extra)
    return record


def encode(record: Any) -> bytes:
    return json.dumps(record).encode()


def bad_samples(refused_lead: str | None = None) -> list[Sample]:
    """One record per kind of bad input (``refused_lead``: a ref the domain refuses)."""
    good = valid_record("bad-base", "bad@example.com")
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    samples = [
        Sample(b"\xff\xfe\x00junk", "not_utf8", label="not UTF-8"),
        Sample(b'{"event_id": "x", "kind": "page_view"', "not_json", label="truncated JSON"),
        Sample(b"{oops}", "not_json", label="not JSON"),
        Sample(b'{"event_id": NaN}', "not_json", label="NaN"),
        Sample(b"[1, 2]", "not_object", label="array"),
        Sample(b'"text"', "not_object", label="string"),
        Sample(b"42", "not_object", label="number"),
        Sample(b"null", "not_object", label="null"),
        Sample(b"", "empty", label="empty value"),
        Sample(None, "empty", label="tombstone"),
        Sample(encode({**good, "event_id": 123}), "invalid_fields", label="event_id a number"),
        Sample(encode({**good, "occurred_at": 1767225600}), "invalid_fields", label="epoch"),
        Sample(encode({**good, "occurred_at": "yesterday"}), "invalid_fields", label="bad date"),
        Sample(
            encode({**good, "attributes": {"employees": True}}),
            "invalid_fields",
            label="employees a boolean",
        ),
        Sample(encode({**good, "properties": "x"}), "invalid_fields", label="properties a string"),
        Sample(encode({k: v for k, v in good.items() if k != "event_id"}), "invalid_fields"),
        Sample(encode({k: v for k, v in good.items() if k != "kind"}), "invalid_fields"),
        Sample(encode({k: v for k, v in good.items() if k != "occurred_at"}), "invalid_fields"),
        Sample(encode({k: v for k, v in good.items() if k != "email"}), "invalid_fields"),
        Sample(encode({**good, "email": "not-an-email"}), "invalid_fields", label="bad email"),
        Sample(encode({**good, "kind": "carrier_pigeon"}), "invalid_fields", label="unknown kind"),
        Sample(encode({**good, "ocurred_at": "2026-01-01"}), "invalid_fields", label="typo field"),
        Sample(encode({**good, "schema_version": 2}), "invalid_fields", label="schema version 2"),
        Sample(encode({**good, "occurred_at": far}), "too_far_in_future", label="far future"),
        Sample(
            encode({**good, "properties": {"blob": "x" * (65 * 1024)}}),
            "oversized",
            label="oversized",
        ),
        *poison_samples(good),
    ]
    if refused_lead is not None:
        refused = valid_record("refused-1", "x@example.com")
        del refused["email"]
        refused["lead"] = refused_lead
        samples.append(Sample(encode(refused), "refused", label="domain refusal"))
    return samples


def nested(depth: int) -> bytes:
    """JSON objects nested ``depth`` deep, as text (``json.dumps`` itself would recurse)."""
    return b'{"a":' * depth + b"1" + b"}" * depth


POISON_LABELS = frozenset(
    {
        "nested 2000 deep",
        "nested 300 deep",
        "employees a 400-digit integer",
        "NUL in id",
        "control character in a key",
        "number out of range",
    }
)


def poison_samples(good: dict[str, Any]) -> list[Sample]:
    """Inputs that once stopped the ingest: each must be dead-lettered like any bad input."""
    prefix = encode(good)[:-1] + b', "properties": '
    return [
        Sample(prefix + nested(2000) + b"}", "invalid_fields", label="nested 2000 deep"),
        Sample(prefix + nested(300) + b"}", "invalid_fields", label="nested 300 deep"),
        Sample(
            encode({**good, "attributes": {"employees": 10**400}}),
            "invalid_fields",
            label="employees a 400-digit integer",
        ),
        Sample(encode({**good, "event_id": "nul\u0000id"}), "invalid_fields", label="NUL in id"),
        Sample(
            encode({**good, "properties": {"bell\u0007": 1}}),
            "invalid_fields",
            label="control character in a key",
        ),
        Sample(prefix + b'{"n": 1e400}}', "invalid_fields", label="number out of range"),
    ]


def valid_samples(
    rng: random.Random, count: int, leads: int = 8, prefix: str = "v"
) -> list[Sample]:
    """Valid records over a few leads; about one in five repeats an earlier event_id."""
    samples: list[Sample] = []
    for i in range(count):
        if samples and rng.random() < 0.2:
            samples.append(rng.choice(samples))
            continue
        lead = f"{prefix}-lead-{rng.randrange(leads)}@example.com"
        extra: dict[str, Any] = {}
        if rng.random() < 0.3:
            extra["attributes"] = {"industry": "software", "employees": rng.choice([40, "1,200"])}
        if rng.random() < 0.3:
            extra["properties"] = {"url": f"/page/{i}"}
        if rng.random() < 0.3:
            extra["source"] = "mautic"
        record = valid_record(f"{prefix}-{i}", lead, rng.choice(ENGAGEMENT_KINDS), **extra)
        event_id = record["event_id"]
        samples.append(Sample(encode(record), "valid", lead.encode(), event_id=event_id, lead=lead))
    return samples


def expected_counts(samples: list[Sample]) -> dict[str, int]:
    """accepted / duplicate / dead_lettered for a fresh store."""
    seen: set[tuple[str | None, str | None]] = set()
    counts = {"accepted": 0, "duplicate": 0, "dead_lettered": 0}
    for sample in samples:
        if sample.expect != "valid":
            counts["dead_lettered"] += 1
        elif (sample.lead, sample.event_id) in seen:
            counts["duplicate"] += 1
        else:
            seen.add((sample.lead, sample.event_id))
            counts["accepted"] += 1
    return counts


def expected_ingest_counts(samples: list[Sample]) -> IngestCounts:
    """``expected_counts`` as the ingest reports them."""
    return IngestCounts(**expected_counts(samples))
