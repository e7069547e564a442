"""No personal data in log lines: one person's whole life in leadflow (import, engage,
the engagement topic, relay, projector, HTTP, every read command; refused commands,
dead letters and an illegal transition too) runs at debug level, and no log line of any
process holds any of the person's values, as typed or lower-cased.

The rule (README, Logging): log lines carry ids, never personal values. The one-line
message a CLI command prints for its user when it fails may name the ref the user typed;
it is not a log line, so only structured (JSON) lines are scanned on a command's stderr.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.pipeline.privacy_workload import PERSONAL_VALUES, Workload

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def log_lines(workload: Workload) -> Iterator[tuple[str, str]]:
    """(where, line) for every log line of the run."""
    for path in workload.log_files:
        for line in path.read_text(errors="replace").splitlines():
            yield path.name, line
    for run in workload.runs:
        for line in run.err.splitlines():
            if line.startswith("{"):
                yield "stderr of a command", line


def test_the_workload_logged_its_error_paths_at_debug_level(privacy_workload: Workload) -> None:
    events = Counter(
        (entry["event"], entry.get("status"))
        for _, line in log_lines(privacy_workload)
        if line.startswith("{")
        for entry in [json.loads(line)]
    )
    assert events[("line_rejected", None)] == 4  # refused, invalid, unknown lead, not JSON
    assert events[("engagement_invalid", None)] == 1  # leadflow engage
    assert events[("engagement_dead_lettered", None)] == 2  # the engagement topic
    assert {("http_request", status) for status in (200, 404, 409, 422)} <= set(events)
    assert events[("relay_published", None)] > 0 and events[("batch_applied", None)] > 0


def test_no_log_line_holds_a_personal_value(privacy_workload: Workload) -> None:
    needles = {v for value in PERSONAL_VALUES for v in (value, value.lower())}
    leaks = [
        f"{where}: {needle!r} in {line[:300]}"
        for where, line in log_lines(privacy_workload)
        for needle in needles
        if needle in line
    ]
    assert not leaks, "\n".join(leaks[:40])
