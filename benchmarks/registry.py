"""Every benchmark the runner knows, by name, in the order they run.

A benchmark is a module exposing ``BENCHMARK`` (a ``benchmarks.framework.Benchmark``). To
add one, write its module and list it here; modules are imported only when selected.
"""

from __future__ import annotations

import importlib

from benchmarks.framework import Benchmark

MODULES: dict[str, str] = {
    "commands": "benchmarks.commands",
    "history": "benchmarks.history",
    "growth": "benchmarks.growth",
    "relay": "benchmarks.relay",
    "projection": "benchmarks.projection",
    "end_to_end": "benchmarks.end_to_end",
    "rebuild": "benchmarks.rebuild",
    "as_of": "benchmarks.as_of",
    "http": "benchmarks.http_api",
}


def names() -> list[str]:
    return list(MODULES)


def load(name: str) -> Benchmark:
    benchmark = importlib.import_module(MODULES[name]).BENCHMARK
    assert isinstance(benchmark, Benchmark), f"{MODULES[name]}.BENCHMARK is not a Benchmark"
    return benchmark
