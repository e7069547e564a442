"""Lead and deal commands arriving through ``leadflow import``, batch after batch.

The lines come from ``tests.e2e.cli.generated_import`` (every prefix is a valid script, so
batches apply in order). A batch the store could not take (the database was away) is
imported again until it goes through: lines applied before the failure then count as
duplicates, as the importer promises.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.journal import Journal
from tests.e2e.pipeline.pipeline import Pipeline


@dataclass
class BatchOutcome:
    number: int
    lines: int
    attempts: int = 0
    applied: int = 0
    duplicate: int = 0
    rejections: list[str] = field(default_factory=list)
    done: bool = False


class ImportLoad(threading.Thread):
    def __init__(
        self,
        pipeline: Pipeline,
        lines: list[str],
        batches: int,
        interval: float,
        journal: Journal,
    ) -> None:
        super().__init__(name="import-load", daemon=True)
        self.pipeline = pipeline
        self.lines = lines
        self.interval = interval
        self.journal = journal
        self._stop_event = threading.Event()
        folder = pipeline.work_dir / "imports"
        folder.mkdir(exist_ok=True)
        size = -(-len(lines) // batches)
        self.files: list[Path] = []
        self.outcomes: list[BatchOutcome] = []
        for number, start in enumerate(range(0, len(lines), size), start=1):
            path = folder / f"batch-{number:02d}.jsonl"
            chunk = lines[start : start + size]
            path.write_text("\n".join(chunk) + "\n", encoding="utf-8")
            self.files.append(path)
            self.outcomes.append(BatchOutcome(number, len(chunk)))

    def run(self) -> None:
        for path, outcome in zip(self.files, self.outcomes, strict=True):
            started = time.monotonic()
            while not self._stop_event.is_set() and not outcome.done:
                self._attempt(path, outcome)
                if not outcome.done:
                    self._stop_event.wait(1.0)
            if self._stop_event.is_set():
                return
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _attempt(self, path: Path, outcome: BatchOutcome) -> None:
        outcome.attempts += 1
        try:
            result = self.pipeline.run("import", str(path), "--json", timeout=90)
        except subprocess.TimeoutExpired:
            self.journal.note("import", f"batch {outcome.number}: timed out; importing again")
            return
        summary = _summary(result.out)
        if summary is not None:
            outcome.applied += int(summary.get("applied", 0))
            outcome.duplicate = int(summary.get("duplicate", 0))
        if result.code == 0:
            outcome.done = True
            return
        if summary is not None and summary.get("rejected") and summary.get("aborted_at") is None:
            outcome.rejections = [f"line {r['line']}: {r['reason']}" for r in summary["rejections"]]
            outcome.done = True
            self.journal.note("import", f"batch {outcome.number}: lines REJECTED")
            return
        problem = " | ".join(result.messages[-1:]) or f"exit {result.code}"
        self.journal.note(
            "import", f"batch {outcome.number} failed ({problem[:160]}); importing it again"
        )

    def imported_lines(self) -> list[str]:
        """The lines of every batch that went through."""
        return [
            line
            for outcome, path in zip(self.outcomes, self.files, strict=True)
            if outcome.done
            for line in path.read_text(encoding="utf-8").splitlines()
            if line
        ]

    @property
    def finished(self) -> bool:
        return all(o.done for o in self.outcomes)

    def wait(self, timeout: float) -> bool:
        self.join(timeout)
        return self.finished

    def stop(self) -> None:
        self._stop_event.set()


def _summary(out: str) -> dict[str, Any] | None:
    try:
        data = json.loads(out)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
