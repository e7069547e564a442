"""``python -m benchmarks``: run the benchmarks, print the table, write the JSON.

Exit status: 0 when every selected benchmark produced its figures (targets missed
included: they are findings, not failures), 1 when a benchmark or a server failed, 2 for
bad options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from adapters.logging import configure_logging
from benchmarks import registry, servers
from benchmarks.framework import (
    STORE_KINDS,
    BenchContext,
    Benchmark,
    ParamValue,
    Result,
    StoreKind,
)
from benchmarks.machine import machine_info, postgres_server_version
from benchmarks.report import Failure, document, table
from deploy._common import ServerStartError

log = structlog.get_logger("leadflow.benchmarks")

ROUNDS = {"quick": 3, "full": 5}


class UsageError(ValueError):
    pass


@dataclass(frozen=True)
class Plan:
    mode: str
    rounds: int
    stores: tuple[StoreKind, ...]
    benchmarks: tuple[Benchmark, ...]
    overrides: dict[str, dict[str, ParamValue]]

    def effective_params(self) -> dict[str, dict[str, ParamValue]]:
        return {
            b.name: {
                p.name: self.overrides.get(b.name, {}).get(
                    p.name, p.quick if self.mode == "quick" else p.full
                )
                for p in b.params
            }
            for b in self.benchmarks
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="leadflow benchmarks: throughput (median of rounds) against a baseline "
        "measured in the same run, with the ratio and whether the target is met.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and 3 rounds (CI smoke, < 2 minutes)"
    )
    parser.add_argument("--out", metavar="FILE", help="write the JSON report here ('-': stdout)")
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help=f"run only these benchmarks (known: {', '.join(registry.names())})",
    )
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgres", "both"],
        default="both",
        help="event stores to measure (default: both). PostgreSQL: LEADFLOW_POSTGRES_DSN, or "
        "a throwaway server started from deploy/postgres",
    )
    parser.add_argument("--rounds", type=int, metavar="N", help="rounds per figure (default 3 / 5)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="BENCHMARK.NAME=VALUE",
        help="override a size, e.g. history.events=2000 or growth.sizes=1000,5000 (repeatable)",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where SQLite stores go (default: a temp dir)"
    )
    parser.add_argument("--list", action="store_true", help="list benchmarks and their sizes")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    return parser


def make_plan(args: argparse.Namespace) -> Plan:
    known = registry.names()
    wanted = [n.strip() for n in (args.only or ",".join(known)).split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise UsageError(f"--only {args.only!r}: unknown benchmark(s) {unknown}; known: {known}")
    benchmarks = tuple(registry.load(n) for n in known if n in wanted)
    if args.rounds is not None and args.rounds < 1:
        raise UsageError(f"--rounds {args.rounds}: at least 1 round is needed")
    mode = "quick" if args.quick else "full"
    stores = STORE_KINDS if args.store == "both" else (args.store,)
    return Plan(
        mode=mode,
        rounds=args.rounds or ROUNDS[mode],
        stores=stores,
        benchmarks=benchmarks,
        overrides=_overrides(args.param),
    )


def _overrides(items: Sequence[str]) -> dict[str, dict[str, ParamValue]]:
    overrides: dict[str, dict[str, ParamValue]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        bench_name, dot, param_name = key.strip().partition(".")
        if not sep or not dot:
            raise UsageError(f"--param {item!r}: expected BENCHMARK.NAME=VALUE")
        if bench_name not in registry.names():
            raise UsageError(f"--param {item!r}: unknown benchmark {bench_name!r}")
        params = {p.name: p for p in registry.load(bench_name).params}
        if param_name not in params:
            raise UsageError(
                f"--param {item!r}: {bench_name} has no size {param_name!r}; "
                f"it has: {', '.join(params) or 'none'}"
            )
        try:
            value = params[param_name].parse(text)
        except ValueError as error:
            raise UsageError(f"--param {bench_name}.{error}") from None
        overrides.setdefault(bench_name, {})[param_name] = value
    return overrides


def listing() -> str:
    lines = []
    for name in registry.names():
        benchmark = registry.load(name)
        stores = "per store" if benchmark.uses_stores else "no store"
        kafka = ", needs Kafka" if benchmark.needs_kafka else ""
        lines.append(f"{name}: {benchmark.summary} ({stores}{kafka})")
        lines += [
            f"    {name}.{p.name}: {p.help} (quick {p.quick}, full {p.full})"
            for p in benchmark.params
        ]
    return "\n".join(lines)


def run_plan(
    plan: Plan, work_root: Path | None
) -> tuple[list[Result], list[Failure], dict[str, Any]]:
    results: list[Result] = []
    failures: list[Failure] = []
    extra: dict[str, Any] = {}
    stores = plan.stores
    with ExitStack() as stack:
        if work_root is not None:
            work_root.mkdir(parents=True, exist_ok=True)
        work_dir = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="leadflow-bench-", dir=work_root)
            )
        )
        dsn: str | None = None
        if "postgres" in stores and any(b.uses_stores for b in plan.benchmarks):
            try:
                dsn = stack.enter_context(servers.postgres())
                extra["postgres_server"] = postgres_server_version(dsn)
            except ServerStartError as error:
                failures.append(Failure("postgres", "postgres", f"no server: {error}"))
                stores = tuple(s for s in stores if s != "postgres")
        bootstrap: str | None = None
        if any(b.needs_kafka for b in plan.benchmarks):
            try:
                bootstrap = stack.enter_context(servers.kafka())
            except ServerStartError as error:
                failures.append(Failure("kafka", None, f"no broker: {error}"))
        for benchmark in plan.benchmarks:
            if benchmark.needs_kafka and bootstrap is None:
                failures.append(Failure(benchmark.name, None, "skipped: no Kafka broker"))
                continue
            for store in stores if benchmark.uses_stores else (None,):
                ctx = BenchContext(
                    benchmark=benchmark.name,
                    quick=plan.mode == "quick",
                    rounds=plan.rounds,
                    store=store,
                    work_dir=work_dir,
                    postgres_dsn=dsn,
                    kafka_bootstrap=bootstrap,
                    params={p.name: p for p in benchmark.params},
                    overrides=plan.overrides.get(benchmark.name, {}),
                )
                results += _run_one(benchmark, ctx, failures)
    return results, failures, extra


def _run_one(benchmark: Benchmark, ctx: BenchContext, failures: list[Failure]) -> list[Result]:
    started = time.monotonic()
    log.info("benchmark_started", benchmark=benchmark.name, store=ctx.store, rounds=ctx.rounds)
    try:
        results = benchmark.run(ctx)
    except Exception as error:  # one broken benchmark must not hide the others
        log.error("benchmark_failed", benchmark=benchmark.name, store=ctx.store, exc_info=True)
        failures.append(Failure(benchmark.name, ctx.store, f"{type(error).__name__}: {error}"))
        return []
    log.info(
        "benchmark_finished",
        benchmark=benchmark.name,
        store=ctx.store,
        seconds=round(time.monotonic() - started, 1),
    )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(listing())
        return 0
    try:
        plan = make_plan(args)
    except UsageError as error:
        parser.error(str(error))
    configure_logging(args.log_level)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_info()
    clock = time.monotonic()
    results, failures, extra = run_plan(plan, args.work_dir)
    machine.update(extra, load_average_end=list(os.getloadavg()))
    report = document(
        mode=plan.mode,
        options={
            "rounds": plan.rounds,
            "stores": list(plan.stores),
            "benchmarks": [b.name for b in plan.benchmarks],
            "params": plan.effective_params(),
        },
        machine=machine,
        started_at=started_at,
        seconds=time.monotonic() - clock,
        results=results,
        failures=failures,
    )
    to_stdout = args.out == "-"
    print(table(results, failures), file=sys.stderr if to_stdout else sys.stdout)
    if args.out:
        text = json.dumps(report, indent=2)
        if to_stdout:
            print(text)
        else:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
            print(f"JSON report: {args.out}")
    return 1 if failures else 0
