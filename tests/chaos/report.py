"""A chaos run's settings and its report: seed, faults, timeline, what each process did
during each outage, the load offered, and every check with its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.checks import Check
from tests.chaos.faults import Fault, Outage
from tests.chaos.supervisor import Exit, Stopped

SEED_ENV = "LEADFLOW_CHAOS_SEED"


@dataclass(frozen=True)
class ChaosConfig:
    duration: float = 45.0
    """Seconds of load; every fault is planned inside it."""
    rate: float = 30.0
    """Engagement records offered per second."""
    leads: int = 300
    import_lines: int = 1000
    import_batches: int = 10
    kills_each: int = 3
    """SIGKILLs per process (ingest, relay, projector)."""
    drain_timeout: float = 90.0
    stop_timeout: float = 15.0
    """How long a process may take to exit on SIGTERM."""


@dataclass
class ChaosReport:
    seed: int
    store: str
    config: ChaosConfig
    faults: list[Fault] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    outages: list[str] = field(default_factory=list)
    load: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    stopped: list[Stopped] = field(default_factory=list)
    seconds: float = 0.0
    logs_kept: Path | None = None
    diagnostics: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def text(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        return "\n".join(
            [
                f"=== chaos run {verdict}: seed {self.seed} ({SEED_ENV}={self.seed} repeats it),"
                f" {self.store} event store, {self.seconds:.0f} s ===",
                f"config: {self.config}",
                "planned faults:",
                *(f"  {fault}" for fault in self.faults),
                "timeline:",
                *(f"  {line}" for line in self.journal),
                "outages: did each process ride it out, or did the supervisor restart it?",
                *(f"  {line}" for line in self.outages or ["none"]),
                "load offered: " + ", ".join(f"{k}: {v}" for k, v in self.load.items()),
                "stopped with SIGTERM: "
                + ", ".join(f"{s.role} exit {s.code} in {s.seconds}s" for s in self.stopped),
                "checks:",
                *(f"  {check}" for check in self.checks),
                *(
                    ["diagnostics:", *(f"  {line}" for line in self.diagnostics)]
                    if self.diagnostics
                    else []
                ),
                *([f"process logs kept in {self.logs_kept}"] if self.logs_kept else []),
            ]
        )


def outage_summary(outages: list[Outage], exits: list[Exit], roles: list[str]) -> list[str]:
    """Per outage and process: no exit of its own, or exits the supervisor restarted.

    An exit belongs to the latest outage that began before it, if it came while that
    server was down or within a few seconds of its return.
    """
    ordered = sorted(outages, key=lambda o: o.down_at)
    lines = []
    for number, outage in enumerate(ordered):
        until = outage.up_at + 3.0
        if number + 1 < len(ordered):
            until = min(until, ordered[number + 1].down_at)
        parts = []
        for role in roles:
            own = [
                e
                for e in exits
                if e.role == role and e.cause == "exited" and outage.down_at <= e.at <= until
            ]
            if own:
                codes = "/".join(sorted({str(e.code) for e in own}))
                parts.append(f"{role} exited {len(own)}x (exit {codes}), restarted by supervisor")
            else:
                parts.append(f"{role} rode it out")
        fault = outage.fault
        lines.append(
            f"{fault.target} {fault.how} +{outage.down_at:.1f}s..+{outage.up_at:.1f}s: "
            + "; ".join(parts)
        )
    return lines
