"""How long each topic leadflow creates keeps its records (its ``retention.ms``).

Every topic but the audit topic holds personal data or records derived from it, so
those are bounded by default; docs/topics.md says what each holds and why its default.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

FOREVER = -1
DAY_MS = 24 * 3600 * 1000
THIRTY_DAYS_MS = 30 * DAY_MS

# Signed heads are hashes and signatures (no personal data), a few hundred bytes each;
# every one kept is a witness of the log at its time, so an older head cannot be
# rewritten together with the store.
AUDIT_RETENTION_MS = FOREVER


def _forever_or_positive(value: int) -> int:
    if value != FOREVER and value <= 0:
        raise ValueError(f"must be {FOREVER} (keep for ever) or a number of milliseconds > 0")
    return value


RetentionMs = Annotated[int, AfterValidator(_forever_or_positive)]


def retention_configs(retention_ms: int) -> dict[str, str]:
    """The topic configs for ``retention_ms``. The broker deletes whole segments only, and
    rolls one every 7 days by default: a bounded topic rolls daily (or sooner), so a record
    outlives its retention by at most a day."""
    configs = {"retention.ms": str(retention_ms)}
    if retention_ms != FOREVER:
        configs["segment.ms"] = str(min(retention_ms, DAY_MS))
    return configs
