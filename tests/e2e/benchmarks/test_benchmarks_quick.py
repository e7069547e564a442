"""Smoke test of ``python -m benchmarks``: quick mode with tiny sizes, on both real stores
and the real broker (the stream benchmarks: relay, projection, end_to_end, rebuild).

It checks that every benchmark runs and that the JSON report has its full shape; it
never judges the figures (speed is what the benchmarks report, not what tests assert).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.runner import main

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "commands.single=18",
    "commands.batched=40",
    "commands.batch_size=20",
    "history.events=160",
    "history.snapshot_interval=50",
    "growth.sizes=60,200",
    "growth.batch_size=20",
    "growth.page_size=50",
    "relay.events=150",
    "projection.events=150",
    "projection.batch_size=50",
    "end_to_end.rate=20",
    "end_to_end.curve_rates=10",
    "end_to_end.seconds=2",
    "end_to_end.warmup_seconds=1",
    "end_to_end.drain_seconds=60",
    "rebuild.events=300",
    "rebuild.step=100",
    "rebuild.batch_size=40",
    "as_of.sizes=100,300",
    "http.commands=18",
    "http.rate=20",
    "http.seconds=1",
]
PER_STORE = {
    "commands.handle",
    "commands.handle_signed",
    "commands.handle_privacy",
    "commands.handle_many",
    "history.load_with_snapshots",
    "history.load_full_replay",
    *(
        f"growth.{phase}_{figure} n={size}"
        for phase in ("write", "read", "engage")
        for figure in ("cost", "peak_rss")
        for size in (60, 200)
    ),
    *(
        f"growth.busy_lead_{figure} n={size}"
        for figure in ("snapshot_bytes", "load_ms")
        for size in (60, 200)
    ),
    "relay.publish",
    "projection.kafka",
    "rebuild.from_store",
    "rebuild.events_per_s",
    "rebuild.privacy",
    "as_of.p50 n=100",
    "as_of.p50 n=300",
    "as_of.p50_largest n=300",
    "as_of.replay n=100",
    "http.commands",
    "http.commands_sequential",
    "http.p50",
    "http.p99",
    "end_to_end.p50",
    "end_to_end.p99",
    "end_to_end.max",
    *(f"end_to_end.curve.{figure} rate={rate}" for figure in ("p50", "p99") for rate in (10, 20)),
    "end_to_end.capacity",
}
EXPECTED_NAMES = {"sqlite": PER_STORE, "postgres": PER_STORE}
ROUNDS = 2


def _run_quick(
    out: Path, postgres_dsn: str, kafka_bootstrap: str
) -> subprocess.CompletedProcess[str]:
    params = [arg for item in TINY for arg in ("--param", item)]
    command = [sys.executable, "-m", "benchmarks", "--quick", "--rounds", str(ROUNDS)]
    return subprocess.run(
        [*command, "--out", str(out), *params],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "LEADFLOW_POSTGRES_DSN": postgres_dsn,
            "LEADFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _check_series(series: dict[str, Any], *, may_be_zero: bool = False) -> None:
    assert set(series) == {"description", "unit", "median", "rounds"}
    assert len(series["rounds"]) == ROUNDS
    assert all(
        isinstance(x, float) and (x > 0 or (may_be_zero and x == 0)) for x in series["rounds"]
    )
    assert min(series["rounds"]) <= series["median"] <= max(series["rounds"])


def _check_result(result: dict[str, Any]) -> None:
    # at these tiny sizes a busy lead has too few events for a snapshot: 0 bytes; and
    # a window where no rate of the curve kept p99 under its bound has capacity 0
    zero = result["name"].startswith(("growth.busy_lead_snapshot_bytes", "end_to_end.capacity"))
    _check_series(
        {k: result[k] for k in ("description", "unit", "median", "rounds")}, may_be_zero=zero
    )
    assert result["met"] in (True, False, None)
    assert (result["target"] is None) == (result["met"] is None)
    if result["baseline"] is None:  # the smallest size of a growth figure without a baseline
        assert result["ratio"] is None
        return
    _check_series(result["baseline"], may_be_zero=zero)
    if result["baseline"]["median"] > 0:
        assert result["ratio"] == pytest.approx(result["median"] / result["baseline"]["median"])
        assert len(result["round_ratios"]) == ROUNDS


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.slow
def test_quick_run_reports_every_benchmark_on_both_stores(tmp_path, postgres_dsn, kafka_bootstrap):
    out = tmp_path / "benchmarks.json"
    done = _run_quick(out, postgres_dsn, kafka_bootstrap)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    print(json.dumps(report, indent=2))  # the CI log keeps the figures

    assert report["format"] == 1
    assert report["mode"] == "quick"
    assert report["errors"] == []
    assert report["options"]["params"]["history"] == {"events": 160, "snapshot_interval": 50}
    assert {"cores", "memory_mib", "python", "platform", "load_average"} <= set(report["machine"])
    results = report["results"]
    for store in ("sqlite", "postgres"):
        assert {r["name"] for r in results if r["store"] == store} == EXPECTED_NAMES[store]
    for result in results:
        _check_result(result)
    summary = report["summary"]
    assert summary["results"] == len(results) == sum(map(len, EXPECTED_NAMES.values()))
    assert summary["targets_met"] + summary["targets_missed"] == sum(
        r["target"] is not None for r in results
    )
    table = done.stdout
    assert "commands.handle_many" in table and "ratio" in table
    by_name = {(r["name"], r["store"]): r for r in results}
    assert by_name[("relay.publish", "postgres")]["details"]["events"] >= 150
    assert by_name[("projection.kafka", "sqlite")]["details"]["events"] >= 150
    assert by_name[("rebuild.from_store", "postgres")]["details"]["events"] >= 300
    for store in ("sqlite", "postgres"):
        e2e = by_name[("end_to_end.p99", store)]
        assert e2e["unit"] == "ms" and e2e["details"]["records"] == 40
        assert e2e["target"]["at_most"] == 150.0
        capacity = by_name[("end_to_end.capacity", store)]
        assert capacity["details"]["curve_rates"] == [10, 20]
        assert capacity["target"]["at_least"] == 500.0
        stages = e2e["details"]["stages_ms"]  # every record found on the events topic
        assert set(stages) == {"10", "20"}
        for figures in stages.values():
            assert set(figures) == {"ingest", "relay", "projector"}
            assert all(0 <= f["p50"] <= f["p99"] for f in figures.values())


def test_a_benchmark_that_cannot_measure_is_reported_and_the_run_fails(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(
        [
            "--only=history",
            "--store=sqlite",
            "--rounds=1",
            "--param=history.events=1",
            f"--out={out}",
            "--log-level=error",
        ]
    )
    assert code == 1
    (error,) = json.loads(out.read_text(encoding="utf-8"))["errors"]
    assert error["benchmark"] == "history"
    assert error["store"] == "sqlite"
    assert "history.events=1 is smaller than" in error["error"]
    assert "ERROR history [sqlite]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only=nope"], "unknown benchmark(s) ['nope']"),
        (["--param=history.nope=3"], "history has no size 'nope'"),
        (["--param=growth.sizes=10,x"], "growth.sizes='10,x': expected positive integers"),
        (["--param=history.events=0"], "history.events='0': expected a positive integer"),
        (["--param=events=3"], "expected BENCHMARK.NAME=VALUE"),
        (["--rounds=0"], "at least 1 round"),
    ],
)
def test_bad_options_are_refused_with_the_reason(args, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
