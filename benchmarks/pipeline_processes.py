"""The stream pipeline as real processes: ``leadflow ingest``, ``leadflow relay`` and
``leadflow project``, configured through ``LEADFLOW_*`` variables only, as an operator runs
them. Each process logs JSON to its own file; readiness is a log line, not a sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from benchmarks.framework import BenchmarkError

log = structlog.get_logger("leadflow.benchmarks.pipeline")

REPO = Path(__file__).resolve().parents[1]
READY_SECONDS = 60.0
STOP_SECONDS = 20.0
# settings the benchmark decides; everything else LEADFLOW_* is inherited as it is
_OWN_PREFIXES = (
    "LEADFLOW_DATA_DIR",
    "LEADFLOW_POSTGRES_",
    "LEADFLOW_KAFKA_BOOTSTRAP",
    "LEADFLOW_STREAM_",
    "LEADFLOW_PROJECTOR_",
    "LEADFLOW_LOG_",
)

ROLES: dict[str, tuple[list[str], str]] = {
    "ingest": (["ingest"], "ingest_ready"),
    "relay": (["relay"], "relay_active"),
    "projector": (["project"], "partitions_assigned"),
}
"""role -> (``leadflow`` arguments, the log event that says it is ready)."""


@dataclass
class PipelineProcess:
    role: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logged(self, event: str) -> bool:
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                try:
                    if json.loads(line).get("event") == event:
                        return True
                except ValueError:
                    continue
        return False

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the process has used so far; 0 where the system has
        no ``/proc``."""
        return process_cpu_seconds(self.process.pid)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            msg = (
                f"leadflow {self.role} exited with status {self.process.returncode}; "
                f"its log ({self.log_path}) ends:\n{self.tail()}"
            )
            raise BenchmarkError(msg)

    def stop(self) -> None:
        """SIGTERM (a clean stop after the batch in hand), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("pipeline_process_killed", role=self.role, pid=self.process.pid)
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a running process, from ``/proc/<pid>/stat``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy so far (any process, the servers
    included: all but idle and I/O wait), from ``/proc/stat``; 0 where there is none."""
    try:
        with Path("/proc/stat").open() as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    guest = sum(fields[8:10])  # counted in user and nice already
    return (sum(fields) - fields[3] - fields[4] - guest) / os.sysconf("SC_CLK_TCK")


@contextmanager
def cpu_shares(processes: list[PipelineProcess]) -> Iterator[dict[str, float]]:
    """The CPU cores each pipeline process, this one (load generator and watcher) and the
    whole machine (``machine``: servers and everything else too) used on average while
    the block ran: filled in on exit."""
    shares: dict[str, float] = {}
    before = {p.role: p.cpu_seconds() for p in processes}
    own, busy, started = time.process_time(), machine_busy_seconds(), time.monotonic()
    yield shares
    wall = max(time.monotonic() - started, 1e-9)
    for p in processes:
        shares[p.role] = round((p.cpu_seconds() - before[p.role]) / wall, 2)
    shares["benchmark"] = round((time.process_time() - own) / wall, 2)
    shares["machine"] = round((machine_busy_seconds() - busy) / wall, 2)


def process_env(settings_env: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    return {**inherited, "LEADFLOW_LOG_FORMAT": "json", **settings_env}


@contextmanager
def running_pipeline(env: dict[str, str], log_dir: Path) -> Iterator[list[PipelineProcess]]:
    """Start ingest, relay and projector; yield once each is ready; stop them all on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        started: list[PipelineProcess] = []
        for role, (args, _) in ROLES.items():
            log_path = log_dir / f"{role}.log"
            log_file = stack.enter_context(log_path.open("wb"))
            process = subprocess.Popen(
                [sys.executable, "-m", "leadflow.cli.main", *args],
                env=process_env(env),
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
            started.append(PipelineProcess(role, process, log_path))
            stack.callback(started[-1].stop)
        _wait_ready(started)
        log.info("pipeline_ready", pids={p.role: p.process.pid for p in started})
        yield started


def _wait_ready(processes: list[PipelineProcess]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    waiting = list(processes)
    while waiting:
        for process in list(waiting):
            process.check_alive()
            if process.logged(ROLES[process.role][1]):
                waiting.remove(process)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(p.role for p in waiting)
            msg = f"not ready after {READY_SECONDS:g} s: {names}; " + "; ".join(
                f"{p.role} log ends: {p.tail(3)}" for p in waiting
            )
            raise BenchmarkError(msg)
        time.sleep(0.1)
