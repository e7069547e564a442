"""``http``: commands through ``leadflow serve`` over loopback, against the same commands
through the in-process service.

- ``http.commands``: commands per second through a real ``leadflow serve`` process, one
  per request, from ``connections`` clients at once (each on its own kept-alive
  connection, each sending one lead's lifecycle in order, as independent callers do),
  versus ``app.handle`` of the same commands one after another on a store of the same
  kind in this process (the simplest in-process use). Target: ratio >= 0.5.
- ``http.commands_sequential``: the same with one client sending one command after
  another (no target: each request then waits for the one before, so it measures the
  per-request cost).
  The sides take turns in steps of ``connections`` lifecycles.
- ``http.p50`` / ``http.p99``: latency of each command at a fixed offered rate (from the
  moment it was due, so a slow answer delays the next ones' figures too), versus
  ``app.handle`` offered the same commands at the same rate. Target on SQLite: p99 <= 50 ms.

The workload is whole lead lifecycles (9 commands each, capture to won deal); the key
is an admin key, the rate limit is off, the server logs its request lines to a file.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

from adapters.api_keys import ApiKeys
from adapters.settings import Settings
from adapters.store_db import StoreDb
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Step,
    Target,
    interleaved_rounds,
    paired_rounds,
)
from benchmarks.serve_process import ServeFailed, serve_process
from benchmarks.stores import fresh_store, opened
from benchmarks.workload import COMMANDS_PER_LIFECYCLE, lifecycle_commands
from domain import commands as c
from leadflow.api.commands import ROUTES
from service.application import LeadflowApp

_SERVED_STORE = ("DATA_DIR", "POSTGRES_DSN", "POSTGRES_SCHEMA", "KAFKA_BOOTSTRAP")

PARAMS = (
    Param("commands", quick=144, full=1800, help="commands per side per round (throughput)"),
    Param("connections", quick=8, full=8, help="clients sending at once (throughput)"),
    Param("rate", quick=20, full=100, help="offered commands per second (latency)"),
    Param("seconds", quick=3, full=60, help="seconds of offered load per round (latency)"),
)
Request = tuple[str, str, dict[str, Any]]


def request_for(command: c.Command) -> Request:
    """The HTTP request that sends ``command`` (method, path, JSON body)."""
    route = next(r for r in ROUTES if r.model is type(command))
    left_out = {"command", "actor", "command_id"}
    path = "/v1" + route.path
    if route.ref_in_path:
        left_out.add(route.target)
        path = path.replace("{ref}", quote(getattr(command, route.target), safe="@"))
    body = command.model_dump(mode="json", exclude_unset=True, exclude=left_out)
    return route.method, path, body


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    count, rate, seconds, connections = (
        ctx.int_param("commands"),
        ctx.int_param("rate"),
        ctx.int_param("seconds"),
        ctx.int_param("connections"),
    )
    with (
        fresh_store(ctx, kind, "http_served") as served,
        fresh_store(ctx, kind, "http_local") as local,
        opened(local) as app,
        _serving(served, ctx.work_dir, connections) as clients,
        ThreadPoolExecutor(connections) as senders,
    ):
        client = clients[0]

        def round_steps(number: int) -> dict[str, list[Step]]:
            def groups(run: str) -> list[list[list[c.Command]]]:
                return _groups(lifecycle_commands(run, count), connections)

            return {
                "http": [_parallel_step(senders, clients, g) for g in groups(f"h{number}")],
                "http_sequential": [_http_step(client, _flat(g)) for g in groups(f"s{number}")],
                "local": [_local_step(app, _flat(g)) for g in groups(f"p{number}")],
            }

        throughput = paired_rounds(ctx.rounds, round_steps, benchmark="http", store=kind)
        offered = rate * seconds
        latencies: dict[str, list[list[float]]] = {"http": [], "local": []}

        def latency_probe(side: str, send: Callable[[c.Command], None]) -> Callable[[int], float]:
            def probe(number: int) -> float:
                timings = _at_rate(lifecycle_commands(f"l{side}{number}", offered), rate, send)
                if number >= 0:
                    latencies[side].append(timings)
                return _percentile(timings, 0.99)

            return probe

        interleaved_rounds(
            ctx.rounds,
            {
                "http": latency_probe("http", client.send),
                "local": latency_probe("local", lambda command: _handle(app, command)),
            },
            benchmark="http",
            store=kind,
        )
    details = {
        "commands_per_round": count,
        "connections": connections,
        "rate": rate,
        "seconds": seconds,
    }
    in_process = Series(
        "app.handle in this process: the same commands, one after another",
        "commands/s",
        throughput["local"],
    )
    results = [
        Result(
            benchmark="http",
            name="http.commands",
            store=kind,
            measured=Series(
                f"leadflow serve over loopback: 1 command per request, {connections} "
                "clients at once, keep-alive",
                "commands/s",
                throughput["http"],
            ),
            baseline=in_process,
            higher_is_better=True,
            target=Target(on="ratio", at_least=0.5),
            details=details,
        ),
        Result(
            benchmark="http",
            name="http.commands_sequential",
            store=kind,
            measured=Series(
                "leadflow serve over loopback: 1 command per request, 1 client, keep-alive",
                "commands/s",
                throughput["http_sequential"],
            ),
            baseline=in_process,
            higher_is_better=True,
            details=details,
        ),
    ]
    for figure, q in (("p50", 0.5), ("p99", 0.99)):
        target = Target(on="value", at_most=50) if figure == "p99" and kind == "sqlite" else None
        results.append(
            Result(
                benchmark="http",
                name=f"http.{figure}",
                store=kind,
                measured=Series(
                    f"leadflow serve, {rate} commands/s offered, {figure} from when each was due",
                    "ms",
                    [_percentile(t, q) for t in latencies["http"]],
                ),
                baseline=Series(
                    f"app.handle in this process, {rate} commands/s offered, {figure}",
                    "ms",
                    [_percentile(t, q) for t in latencies["local"]],
                ),
                higher_is_better=False,
                target=target,
                details=details,
            )
        )
    return results


def _groups(commands: list[c.Command], size: int) -> list[list[list[c.Command]]]:
    """The commands as lifecycles, ``size`` lifecycles to a group."""
    step = COMMANDS_PER_LIFECYCLE
    lifecycles = [commands[i : i + step] for i in range(0, len(commands), step)]
    return [lifecycles[i : i + size] for i in range(0, len(lifecycles), size)]


def _flat(group: list[list[c.Command]]) -> list[c.Command]:
    return [command for lifecycle in group for command in lifecycle]


class _Client:
    """One kept-alive HTTP/1.1 connection (the standard library's: an HTTP client
    library's own per-request cost would be measured too, and is about the server's)."""

    def __init__(self, url: str, token: str) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self._connection = http.client.HTTPConnection(host, int(port), timeout=60)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(self, command: c.Command) -> None:
        method, path, body = request_for(command)
        try:
            status, text = self._exchange(method, path, json.dumps(body))
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # the server closed the kept-alive connection while it sat idle (uvicorn's
            # keep-alive timeout, between latency rounds): the request was not taken
            self._connection.close()
            status, text = self._exchange(method, path, json.dumps(body))
        if status != 200:
            msg = f"the benchmark workload was refused: {method} {path}: {text[:300]!r}"
            raise BenchmarkError(msg)

    def _exchange(self, method: str, path: str, body: str) -> tuple[int, bytes]:
        self._connection.request(method, path, body, self._headers)
        answer = self._connection.getresponse()
        return answer.status, answer.read()

    def close(self) -> None:
        self._connection.close()


def _handle(app: LeadflowApp, command: c.Command) -> None:
    app.handle(command)


def _http_step(client: _Client, commands: list[c.Command]) -> Step:
    def step() -> int:
        for command in commands:
            client.send(command)
        return len(commands)

    return step


def _parallel_step(
    senders: ThreadPoolExecutor, clients: list[_Client], group: list[list[c.Command]]
) -> Step:
    """Each lifecycle of the group sent in order on its own connection, all at once."""

    def send_lifecycle(number: int) -> int:
        for command in group[number]:
            clients[number].send(command)
        return len(group[number])

    def step() -> int:
        return sum(senders.map(send_lifecycle, range(len(group))))

    return step


def _local_step(app: LeadflowApp, commands: list[c.Command]) -> Step:
    def step() -> int:
        for command in commands:
            app.handle(command)
        return len(commands)

    return step


def _at_rate(
    commands: list[c.Command], rate: float, send: Callable[[c.Command], None]
) -> list[float]:
    """Milliseconds from when each command was due (``rate`` per second) to its answer."""
    timings = []
    start = time.perf_counter()
    for number, command in enumerate(commands):
        due = start + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(command)
        timings.append((time.perf_counter() - due) * 1000)
    return timings


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def _served_env(settings: Settings) -> dict[str, str]:
    store = settings.store
    env = {
        k: v
        for k, v in os.environ.items()
        if not any(k == f"LEADFLOW_{name}" for name in _SERVED_STORE)
    }
    env |= {
        "LEADFLOW_DATA_DIR": str(store.data_dir),
        "LEADFLOW_API_RATE_PER_SECOND": "0",
        "LEADFLOW_LOG_FORMAT": "json",
    }
    if store.dsn is not None:
        env |= {
            "LEADFLOW_POSTGRES_DSN": store.dsn,
            "LEADFLOW_POSTGRES_SCHEMA": store.postgres_schema,
        }
    return env


@contextmanager
def _serving(settings: Settings, work_dir: Path, connections: int) -> Iterator[list[_Client]]:
    """A ``leadflow serve`` process on the store, and clients with an admin key."""
    with StoreDb(settings.store) as db:
        _, token = ApiKeys(db).create("benchmark", "admin")
    log_file = work_dir / f"serve_{uuid4().hex[:10]}.log"
    try:
        with serve_process(_served_env(settings), log_file) as url:
            clients = [_Client(url, token) for _ in range(max(1, connections))]
            try:
                yield clients
            finally:
                for client in clients:
                    client.close()
    except ServeFailed as error:
        raise BenchmarkError(str(error)) from None


BENCHMARK = Benchmark(
    name="http",
    summary="commands/s through leadflow serve over loopback vs in-process app.handle; "
    "p50/p99 latency at a fixed offered rate",
    run=run,
    params=PARAMS,
)
