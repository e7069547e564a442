"""The shapes every benchmark shares: rounds, a baseline measured in the same run, a target.

A benchmark is a function ``run(ctx) -> list[Result]``. Each Result holds the per-round
figures of what leadflow did and of its baseline, both measured by this process in this
run, so that the ratio between them stays meaningful on a noisy, shared machine. Targets
are reported (met / missed), never asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import structlog

log = structlog.get_logger("leadflow.benchmarks")

StoreKind = Literal["sqlite", "postgres"]
STORE_KINDS: tuple[StoreKind, ...] = ("sqlite", "postgres")
ParamValue = int | tuple[int, ...]


class BenchmarkError(Exception):
    """A benchmark could not produce a valid measurement; the message says what and why."""


@dataclass(frozen=True)
class Param:
    """A size a benchmark uses, with its quick-mode and full-mode defaults."""

    name: str
    quick: ParamValue
    full: ParamValue
    help: str

    def parse(self, text: str) -> ParamValue:
        """Read an override: one integer, or a comma-separated list when the default is one."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            numbers = tuple(int(p.replace("_", "")) for p in parts)
        except ValueError:
            numbers = ()
        if not numbers or any(n <= 0 for n in numbers):
            kind = "positive integers, comma-separated" if self.is_list else "a positive integer"
            msg = f"{self.name}={text!r}: expected {kind}"
            raise ValueError(msg)
        if self.is_list:
            return numbers
        if len(numbers) != 1:
            msg = f"{self.name}={text!r}: expected a single positive integer"
            raise ValueError(msg)
        return numbers[0]

    @property
    def is_list(self) -> bool:
        return isinstance(self.full, tuple)


@dataclass(frozen=True)
class Target:
    """What a result should reach: a bound on its ratio to the baseline, or on its value."""

    on: Literal["ratio", "value"]
    at_least: float | None = None
    at_most: float | None = None

    def met(self, value: float, ratio: float | None) -> bool | None:
        figure = ratio if self.on == "ratio" else value
        if figure is None:
            return None
        if self.at_least is not None and figure < self.at_least:
            return False
        return not (self.at_most is not None and figure > self.at_most)

    def describe(self, unit: str) -> str:
        suffix = "" if self.on == "ratio" else f" {unit}"
        bounds = []
        if self.at_least is not None:
            bounds.append(f">= {_number(self.at_least)}{suffix}")
        if self.at_most is not None:
            bounds.append(f"<= {_number(self.at_most)}{suffix}")
        return ("ratio " if self.on == "ratio" else "") + " and ".join(bounds)


@dataclass
class Series:
    """One figure measured once per round (after an unrecorded warm-up)."""

    description: str
    unit: str
    rounds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "unit": self.unit,
            "median": self.median,
            "rounds": self.rounds,
        }


@dataclass
class Result:
    benchmark: str
    name: str
    store: str
    measured: Series
    baseline: Series | None
    higher_is_better: bool
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """measured / baseline (medians)."""
        if self.baseline is None or self.baseline.median == 0:
            return None
        return self.measured.median / self.baseline.median

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.met(self.measured.median, self.ratio)

    @property
    def round_ratios(self) -> list[float] | None:
        """measured / baseline of each round, when both were measured round by round."""
        if self.baseline is None or len(self.baseline.rounds) != len(self.measured.rounds):
            return None
        pairs = zip(self.measured.rounds, self.baseline.rounds, strict=True)
        return [m / b for m, b in pairs if b]

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "name": self.name,
            "store": self.store,
            "description": self.measured.description,
            "unit": self.measured.unit,
            "higher_is_better": self.higher_is_better,
            "median": self.measured.median,
            "rounds": self.measured.rounds,
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "ratio": self.ratio,
            "round_ratios": self.round_ratios,
            "target": None
            if self.target is None
            else {
                "text": self.target.describe(self.measured.unit),
                "on": self.target.on,
                "at_least": self.target.at_least,
                "at_most": self.target.at_most,
            },
            "met": self.met,
            "details": self.details,
        }


@dataclass(frozen=True)
class BenchContext:
    """What a benchmark is told about this run."""

    benchmark: str
    quick: bool
    rounds: int
    store: StoreKind | None
    work_dir: Path
    postgres_dsn: str | None = None
    kafka_bootstrap: str | None = None
    params: Mapping[str, Param] = field(default_factory=dict)
    overrides: Mapping[str, ParamValue] = field(default_factory=dict)

    @property
    def store_kind(self) -> StoreKind:
        """The store this call measures (benchmarks that use stores run once per store)."""
        assert self.store is not None, f"{self.benchmark} runs without a store"
        return self.store

    def param(self, name: str) -> ParamValue:
        if name in self.overrides:
            return self.overrides[name]
        declared = self.params[name]
        return declared.quick if self.quick else declared.full

    def int_param(self, name: str) -> int:
        value = self.param(name)
        assert isinstance(value, int), f"{self.benchmark}.{name} is a list"
        return value

    def ints_param(self, name: str) -> tuple[int, ...]:
        value = self.param(name)
        assert isinstance(value, tuple), f"{self.benchmark}.{name} is a single number"
        return value


@dataclass(frozen=True)
class Benchmark:
    name: str
    summary: str
    run: Callable[[BenchContext], list[Result]]
    params: tuple[Param, ...] = ()
    uses_stores: bool = True
    needs_kafka: bool = False


# --- measuring ---------------------------------------------------------------------------


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


Probe = Callable[[int], float]


def interleaved_rounds(
    rounds: int, probes: Mapping[str, Probe], *, warmup: bool = True, **log_ids: Any
) -> dict[str, list[float]]:
    """Run each probe once per round, alternating, so drifting machine load hits all alike.

    A probe gets the round number (-1 for the unrecorded warm-up) and returns its figure.
    """
    figures: dict[str, list[float]] = {name: [] for name in probes}
    for number in range(-1 if warmup else 0, rounds):
        for name, probe in probes.items():
            figure = probe(number)
            if number >= 0:
                figures[name].append(figure)
            log.info("round", probe=name, round=number, figure=round(figure, 4), **log_ids)
    return figures


Step = Callable[[], int]


def alternating_steps(steps: Mapping[str, Sequence[Step]]) -> dict[str, float]:
    """Operations per second of each side, its steps run in turn with the other sides'.

    Step 1 of every side, then step 2 of every side, and so on: the sides share the
    machine's conditions second by second, not just round by round. A step does a slice
    of its side's work and returns how many operations it did.
    """
    done = dict.fromkeys(steps, 0)
    seconds = dict.fromkeys(steps, 0.0)
    for turn in range(max(len(s) for s in steps.values())):
        for name, side in steps.items():
            if turn < len(side):
                started = time.perf_counter()
                done[name] += side[turn]()
                seconds[name] += time.perf_counter() - started
    return {name: per_second(done[name], seconds[name]) for name in steps}


def paired_rounds(
    rounds: int, make_steps: Callable[[int], Mapping[str, Sequence[Step]]], **log_ids: Any
) -> dict[str, list[float]]:
    """Per side, operations per second in each of ``rounds`` rounds of ``alternating_steps``.

    ``make_steps(round)`` prepares a round's steps (untimed); round -1 is the unrecorded
    warm-up.
    """
    figures: dict[str, list[float]] = {}
    for number in range(-1, rounds):
        for name, figure in alternating_steps(make_steps(number)).items():
            if number >= 0:
                figures.setdefault(name, []).append(figure)
            log.info("round", probe=name, round=number, figure=round(figure, 4), **log_ids)
    return figures


def per_second(count: int, seconds: float) -> float:
    if seconds <= 0:
        msg = f"{count} operations took no measurable time; raise the benchmark's size"
        raise BenchmarkError(msg)
    return count / seconds


def _number(value: float) -> str:
    return f"{value:g}"
