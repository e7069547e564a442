"""What happened during a chaos run, and when: faults, restarts, load, checks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    at: float
    topic: str
    text: str

    def __str__(self) -> str:
        return f"+{self.at:6.1f}s  {self.topic:<10} {self.text}"


class Journal:
    """A thread-safe timeline; every entry is also printed as it happens."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.entries: list[Entry] = []

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def note(self, topic: str, text: str) -> None:
        entry = Entry(round(self.elapsed(), 1), topic, text)
        with self._lock:
            self.entries.append(entry)
        print(f"[chaos] {entry}", flush=True)

    def lines(self, *topics: str) -> list[str]:
        with self._lock:
            return [str(e) for e in self.entries if not topics or e.topic in topics]
