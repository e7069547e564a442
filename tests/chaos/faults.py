"""The faults of a chaos run: planned up front from the seed, injected on schedule.

- ``sigkill``: SIGKILL the current ingest, relay or projector process (the supervisor
  starts it again).
- ``broker`` / ``postgres``: take the shared server down (a clean stop, or a crash:
  SIGKILL for the broker, an immediate shutdown for PostgreSQL), keep it down for a
  while, start it again. A server is always started again, even if the run fails.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from tests.chaos.journal import Journal
from tests.chaos.supervisor import Supervisor

Action = Literal["sigkill", "broker", "postgres"]
How = Literal["stop", "crash"]


class Server(Protocol):
    """What ``deploy.kafka.broker.Broker`` and ``deploy.postgres.server.PostgresServer`` offer."""

    def stop(self, timeout: float = ...) -> None: ...
    def kill(self) -> None: ...
    def start(self) -> None: ...
    def is_running(self) -> bool: ...


@dataclass(frozen=True)
class Fault:
    at: float
    action: Action
    target: str
    how: How = "stop"
    down_for: float = 0.0

    def __str__(self) -> str:
        if self.action == "sigkill":
            return f"at {self.at:5.1f}s SIGKILL {self.target}"
        return f"at {self.at:5.1f}s {self.target} {self.how}, down for {self.down_for:.1f}s"


@dataclass(frozen=True)
class Outage:
    """When a server went down and when it answered again (seconds into the run)."""

    fault: Fault
    down_at: float
    up_at: float


def plan_faults(
    rng: random.Random,
    duration: float,
    roles: list[str],
    kills_each: int,
    servers: list[str],
) -> list[Fault]:
    """``kills_each`` SIGKILLs per role anywhere in the run; server outages one after the
    other, in seeded order, each in its own part of the run (a restarted broker takes
    several seconds to answer, and the outages should not hide each other)."""
    faults = [
        Fault(round(rng.uniform(2.0, duration - 3.0), 1), "sigkill", role)
        for role in roles
        for _ in range(kills_each)
    ]
    order = list(servers)
    rng.shuffle(order)
    slot = (duration - 12.0) / max(1, len(order))
    for number, server in enumerate(order):
        action: Action = "broker" if server == "broker" else "postgres"
        faults.append(
            Fault(
                round(4.0 + number * slot + rng.uniform(0.0, slot * 0.4), 1),
                action,
                server,
                rng.choice(["stop", "crash"]),
                round(rng.uniform(2.0, 5.0), 1),
            )
        )
    return sorted(faults, key=lambda f: f.at)


class FaultInjector:
    """Injects the faults at their times. SIGKILLs and server outages run in two lanes,
    so processes are killed during an outage too; within a lane a fault comes late
    when the one before it overran (a broker takes a while to start)."""

    def __init__(
        self,
        faults: list[Fault],
        supervisor: Supervisor,
        servers: dict[str, Server],
        journal: Journal,
    ) -> None:
        self.faults = faults
        self.supervisor = supervisor
        self.servers = servers
        self.journal = journal
        self.errors: list[str] = []
        self.injected: list[Fault] = []
        self.outages: list[Outage] = []
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()
        lanes = {
            "kills": [f for f in faults if f.action == "sigkill"],
            "outages": [f for f in faults if f.action != "sigkill"],
        }
        self._threads = [
            threading.Thread(target=self._run, args=(lane,), name=f"faults-{name}", daemon=True)
            for name, lane in lanes.items()
        ]

    def start(self) -> None:
        self._t0 = time.monotonic()
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        self._stop_event.set()

    def _run(self, lane: list[Fault]) -> None:
        for fault in lane:
            if self._stop_event.wait(max(0.0, self._t0 + fault.at - time.monotonic())):
                return
            try:
                self._inject(fault)
            except Exception as error:  # noqa: BLE001 - recorded; the run then fails
                self.errors.append(f"{fault}: {type(error).__name__}: {error}")
                self.journal.note("fault", f"FAILED to inject {fault}: {error}")

    def _inject(self, fault: Fault) -> None:
        if fault.action == "sigkill":
            self._kill(fault)
            return
        server = self.servers[fault.target]
        down_at = self.journal.elapsed()
        try:
            if fault.how == "crash":
                server.kill()
            else:
                server.stop()
            self.journal.note("fault", f"{fault.target} DOWN ({fault.how})")
            self.injected.append(fault)
            self._stop_event.wait(fault.down_for)
        finally:
            server.start()
        up_at = self.journal.elapsed()
        self.outages.append(Outage(fault, down_at, up_at))
        self.journal.note("fault", f"{fault.target} back up after {up_at - down_at:.1f}s")

    def _kill(self, fault: Fault) -> None:
        """SIGKILL the target; when it is between incarnations, wait for the next one."""
        deadline = time.monotonic() + 10.0
        while (pid := self.supervisor.kill(fault.target)) is None:
            if time.monotonic() > deadline or self._stop_event.wait(0.2):
                self.journal.note("fault", f"SIGKILL {fault.target}: nothing ran to kill")
                return
        self.journal.note("fault", f"SIGKILL {fault.target} (pid {pid})")
        self.injected.append(fault)
