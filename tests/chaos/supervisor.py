"""Keeps the pipeline's processes running, as systemd or Kubernetes would.

A process the harness SIGKILLs is started again after a short, seeded pause. A process
that exits by itself (e.g. the projector when PostgreSQL goes away) is started again
with back-off, and the exit is recorded with the process's last words, so the report
tells which processes rode out an outage and which had to be restarted.
"""

from __future__ import annotations

import contextlib
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Literal

from tests.chaos.journal import Journal
from tests.e2e.pipeline.pipeline import Pipeline
from tests.integration.consumers.stream_helpers import CliProcess

Cause = Literal["sigkill", "exited"]


@dataclass(frozen=True)
class Exit:
    role: str
    incarnation: int
    pid: int
    code: int | None
    cause: Cause
    at: float
    last_words: str


@dataclass(frozen=True)
class Stopped:
    role: str
    code: int | None
    seconds: float


class Supervisor:
    def __init__(
        self, pipeline: Pipeline, roles: list[str], journal: Journal, rng: random.Random
    ) -> None:
        self.pipeline = pipeline
        self.roles = roles
        self.journal = journal
        self.exits: list[Exit] = []
        self.starts: dict[str, int] = dict.fromkeys(roles, 0)
        self._rng = rng
        self._lock = threading.Lock()
        self._current: dict[str, CliProcess | None] = dict.fromkeys(roles)
        self._restart_at: dict[str, float] = {}
        self._crash_streak: dict[str, int] = dict.fromkeys(roles, 0)
        self._born: dict[str, float] = {}
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    # --- control ---------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            for role in self.roles:
                self._spawn(role)
        self._watcher.start()

    def kill(self, role: str) -> int | None:
        """SIGKILL the role's process (if one runs); it is restarted after a short pause."""
        with self._lock:
            process = self._current[role]
            if process is None or process.process.poll() is not None:
                return None
            pid = process.process.pid
            process.kill()
            self._record_exit(role, process, "sigkill")
            self._restart_at[role] = time.monotonic() + self._rng.uniform(0.1, 1.5)
            return pid

    def stop(self, timeout: float = 20.0) -> list[Stopped]:
        """Stop supervising, then SIGTERM every process and time its clean exit."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=10)
        stopped: list[Stopped] = []
        with self._lock:
            for role in self.roles:
                process = self._current[role]
                if process is None:
                    continue
                started = time.monotonic()
                code: int | None
                try:
                    code = process.terminate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    code = None
                    process.kill()
                stopped.append(Stopped(role, code, round(time.monotonic() - started, 2)))
                self._current[role] = None
        return stopped

    def dump_stacks(self) -> dict[str, str]:
        """Stop supervising and SIGABRT every running process: with PYTHONFAULTHANDLER set,
        each writes every thread's stack to its log. Returns each process's log."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=10)
        logs: dict[str, str] = {}
        with self._lock:
            for role, process in self._current.items():
                if process is None:
                    continue
                process.process.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.process.wait(timeout=10)
                process.kill()
                logs[role] = process.log_path.read_text(errors="replace")
                self._current[role] = None
        return logs

    def unplanned_exits(self, since: float = 0.0) -> list[Exit]:
        return [e for e in self.exits if e.cause == "exited" and e.at >= since]

    # --- the watch loop ----------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(0.1):
            with self._lock:
                for role in self.roles:
                    self._check(role)

    def _check(self, role: str) -> None:
        process = self._current[role]
        now = time.monotonic()
        if process is not None and process.process.poll() is not None:
            process.kill()  # reaps it and closes its log
            self._record_exit(role, process, "exited")
            lived = now - self._born.get(role, now)
            self._crash_streak[role] = 0 if lived > 10 else self._crash_streak[role] + 1
            self._restart_at[role] = now + min(0.5 * 2 ** self._crash_streak[role], 4.0)
        elif process is None and now >= self._restart_at.get(role, 0.0):
            self._spawn(role)

    def _spawn(self, role: str) -> None:
        process = self.pipeline.start(role)
        self._current[role] = process
        self._born[role] = time.monotonic()
        self.starts[role] += 1
        if self.starts[role] > 1:
            self.journal.note(
                "supervisor",
                f"started {role} again (#{self.starts[role]}, pid {process.process.pid})",
            )

    def _record_exit(self, role: str, process: CliProcess, cause: Cause) -> None:
        self._current[role] = None
        code = process.process.returncode
        words = last_words(process)
        self.exits.append(
            Exit(
                role,
                self.starts[role],
                process.process.pid,
                code,
                cause,
                self.journal.elapsed(),
                words,
            )
        )
        if cause == "exited":
            self.journal.note("supervisor", f"{role} EXITED by itself (code {code}): {words}")


def last_words(process: CliProcess) -> str:
    """The process's last line meant for a person, else its last log line."""
    try:
        lines = process.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    plain = [line for line in lines if line.strip() and not line.startswith("{")]
    chosen = plain[-1] if plain else (lines[-1] if lines else "")
    return " ".join(chosen.split())[:300]
