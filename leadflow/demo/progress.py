"""Progress of a long run on stderr: one updating line on a terminal, a line per tenth
of the work otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

_BAR = 24
_REDRAW_S = 0.1


class Progress:
    def __init__(
        self,
        total: int,
        *,
        label: str = "demo",
        unit: str = "commands",
        stream: TextIO | None = None,
        interactive: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 1)
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._clock = clock
        self._started = clock()
        self._drawn_at = -_REDRAW_S
        self._done = 0
        self._detail = ""
        self._next_tenth = 1
        self._on_screen = False

    def start(self, total: int) -> None:
        """(Re)start counting towards ``total``; the clock restarts too."""
        self.total = max(total, 1)
        self._started = self._clock()
        self._done = 0
        self._next_tenth = 1

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def note(self, message: str) -> None:
        """A one-off line (a phase starting), above the updating line."""
        with self.suspended():
            self.stream.write(f"{self.label}: {message}\n")
            self.stream.flush()

    def update(self, done: int, detail: str = "") -> None:
        self._done, self._detail = done, detail
        if self.interactive:
            if self._clock() - self._drawn_at >= _REDRAW_S or done >= self.total:
                self._draw()
        elif done * 10 >= self._next_tenth * self.total:
            self._next_tenth = done * 10 // self.total + 1
            self.stream.write(self._text() + "\n")
            self.stream.flush()

    def finish(self, message: str) -> None:
        self._clear()
        self.stream.write(f"{self.label}: {message}\n")
        self.stream.flush()

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Clear the updating line while something else writes to the terminal."""
        was_on_screen = self._on_screen
        self._clear()
        try:
            yield
        finally:
            if was_on_screen:
                self._draw()

    def _text(self) -> str:
        share = min(self._done / self.total, 1.0)
        elapsed = self.elapsed
        eta = f", ~{elapsed / share - elapsed:.0f} s left" if 0.02 < share < 1 else ""
        detail = f" · {self._detail}" if self._detail else ""
        return (
            f"{self.label}: {share:4.0%} {self._done:,}/{self.total:,} {self.unit}"
            f"{detail} · {elapsed:.1f} s{eta}"
        )

    def _draw(self) -> None:
        share = min(self._done / self.total, 1.0)
        filled = round(share * _BAR)
        bar = "#" * filled + "." * (_BAR - filled)
        self.stream.write(f"\r\x1b[K[{bar}] {self._text()}")
        self.stream.flush()
        self._drawn_at = self._clock()
        self._on_screen = True

    def _clear(self) -> None:
        if self._on_screen:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._on_screen = False
