"""A 100,000-line import through the real CLI: progress, and an all-duplicate re-run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.cli.cli_runner import CliRun, run_subprocess
from tests.e2e.cli.generated_import import generate_lines

LINES = 100_000


def stored_events(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        count: int = db.execute("SELECT count(*) FROM stored_events").fetchone()[0]
    return count


def finished(run: CliRun) -> dict[str, float]:
    """The structlog summary line that ``import`` writes at the end."""
    summary: dict[str, float] = json.loads(run.err.splitlines()[-1])
    assert summary["event"] == "import_finished"
    return summary


@pytest.mark.slow
def test_100k_lines_with_progress_then_all_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        out.writelines(f"{line}\n" for line in generate_lines(LINES))
    data = tmp_path / "data"

    first = run_subprocess(data, "import", str(path), "--progress")
    events = stored_events(data)
    again = run_subprocess(data, "import", str(path))

    assert (first.code, first.lines) == (
        0,
        [f"applied {LINES}, duplicate 0, rejected 0, total {LINES}"],
    )
    progress = [line for line in first.messages if line.endswith("lines/s")]
    assert progress, first.err
    assert all(" applied, " in line and " rejected)" in line for line in progress)
    assert (again.code, again.lines) == (
        0,
        [f"applied 0, duplicate {LINES}, rejected 0, total {LINES}"],
    )
    assert not [line for line in again.messages if line.endswith("lines/s")]
    assert stored_events(data) == events
    for name, run in (("first import", first), ("re-import", again)):
        summary = finished(run)
        print(
            f"{name}: {LINES:,} lines in {summary['seconds']:.1f} s = "
            f"{summary['lines_per_second']:,.0f} lines/s"
        )
    print(f"{events:,} events stored")
