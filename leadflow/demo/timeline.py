"""The simulation plumbing of a demo journey: a business-time agenda of steps, commands
emitted with ids derived from the journey, and decisions that a script can force."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import commands as c

QUARTER_START = datetime(2026, 1, 1, tzinfo=UTC)
QUARTER_DAYS = 90
QUARTER_END = QUARTER_START + timedelta(days=QUARTER_DAYS)

Choices = Sequence[tuple[str, float]]


@dataclass(order=True, slots=True)
class _Step:
    at: datetime
    seq: int
    action: Callable[[datetime], None] = field(compare=False)


class Timeline:
    """Steps run in business-time order; nothing is scheduled at or after QUARTER_END.

    Every step emits its commands at its own time, so the emitted order is the business-time
    order. Command ids are ``<prefix>-<n>``; all of a journey's commands share the
    correlation id ``<prefix>``.
    """

    def __init__(
        self, rng: random.Random, prefix: str, email: str, script: Mapping[str, Sequence[str]]
    ) -> None:
        self.rng = rng
        self.prefix = prefix
        self.email = email
        self.scripted = bool(script)
        self.script = {point: list(forced) for point, forced in script.items()}
        self.commands: list[tuple[datetime, int, c.Command]] = []
        self._queue: list[_Step] = []
        self._seq = 0

    def run(self) -> list[tuple[datetime, int, c.Command]]:
        while self._queue:
            step = heapq.heappop(self._queue)
            step.action(step.at)
        return self.commands

    def _at(self, at: datetime, action: Callable[[datetime], None]) -> None:
        if at < QUARTER_END:
            self._seq += 1
            heapq.heappush(self._queue, _Step(at, self._seq, action))

    def _later(
        self, t: datetime, hours: tuple[float, float], action: Callable[[datetime], None]
    ) -> None:
        delay = timedelta(minutes=round(self.rng.uniform(*hours) * 60))
        self._at(t + delay, action)

    def _emit(self, t: datetime, model: type[c.Command], actor: str, **fields: Any) -> None:
        if issubclass(model, c.LeadCommand):
            fields.setdefault("lead", self.email)
        number = len(self.commands) + 1
        command = model(
            command_id=f"{self.prefix}-{number:03d}",
            correlation_id=self.prefix,
            actor=actor,
            occurred_at=t,
            **fields,
        )
        self.commands.append((t, number, command))

    def _choose(self, point: str, choices: Choices) -> str:
        forced = self.script.get(point)
        if forced:
            return forced.pop(0)
        names = [name for name, _ in choices]
        return self.rng.choices(names, weights=[w for _, w in choices])[0]
