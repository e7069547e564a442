"""The run's outputs: a table for people and a JSON document with every round's figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.framework import Result

JSON_FORMAT_VERSION = 1
COLUMNS = ("benchmark", "store", "measured (median)", "baseline (median)", "ratio", "target", "")


@dataclass(frozen=True)
class Failure:
    """A benchmark (on one store) that produced no result, and why."""

    benchmark: str
    store: str | None
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "store": self.store, "error": self.error}


def number(value: float) -> str:
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: Sequence[Result], failures: Sequence[Failure]) -> str:
    rows = [COLUMNS]
    for result in results:
        baseline = result.baseline
        rows.append(
            (
                result.name,
                result.store,
                f"{number(result.measured.median)} {result.measured.unit}",
                "-" if baseline is None else f"{number(baseline.median)} {baseline.unit}",
                "-" if result.ratio is None else f"{result.ratio:.2f}",
                "-" if result.target is None else result.target.describe(result.measured.unit),
                {True: "met", False: "MISSED", None: ""}[result.met],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"ERROR {f.benchmark} [{f.store or '-'}]: {f.error}" for f in failures]
    return "\n".join(line.rstrip() for line in lines)


def document(
    *,
    mode: str,
    options: dict[str, Any],
    machine: dict[str, Any],
    started_at: str,
    seconds: float,
    results: Sequence[Result],
    failures: Sequence[Failure],
) -> dict[str, Any]:
    return {
        "format": JSON_FORMAT_VERSION,
        "mode": mode,
        "started_at": started_at,
        "seconds": round(seconds, 1),
        "options": options,
        "machine": machine,
        "results": [r.to_json() for r in results],
        "errors": [f.to_json() for f in failures],
        "summary": {
            "results": len(results),
            "targets_met": sum(r.met is True for r in results),
            "targets_missed": sum(r.met is False for r in results),
            "errors": len(failures),
        },
    }
