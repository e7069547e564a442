"""``leadflow import`` with the command ledger: a re-import reports what the first did,
a reused ``command_id`` is a line-numbered refusal (exit 1), and an import killed at a
random point and run again ends where a clean run ends."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.cli.cli_runner import LEADFLOW, run_subprocess
from tests.e2e.cli.conftest import Cli

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_reimport_reports_the_same_refusal_and_leaves_the_lead_in_mql(
    cli: Cli, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "three.jsonl",
        [
            {
                "command": "capture_lead",
                "lead": "a@x.com",
                "source": "web",
                "occurred_at": "2026-01-01T09:00:00Z",
            },
            {"command": "accept_lead", "lead": "a@x.com", "occurred_at": "2026-01-02T09:00:00Z"},
            {"command": "mark_mql", "lead": "a@x.com", "occurred_at": "2026-01-03T09:00:00Z"},
        ],
    )

    first = cli("import", str(path))
    second = cli("import", str(path))
    show = cli("lead", "show", "a@x.com", "--json")

    assert first.code == second.code == 1
    assert first.lines[0].startswith("line 2: ")
    assert second.lines[0] == first.lines[0]
    assert second.lines[-1] == "applied 0, duplicate 2, rejected 1, total 3"
    assert json.loads(show.out)["stage"] == "mql"


def test_a_command_id_in_a_derived_namespace_is_refused(cli: Cli, tmp_path: Path) -> None:
    """A sender's id may not take the place of an engagement's or an import line's."""
    capture: dict[str, object] = {"command": "capture_lead", "lead": "ns@x.com", "source": "web"}
    engaged: dict[str, object] = {
        "command": "record_engagement",
        "lead": "ns@x.com",
        "event_id": "e-1",
        "kind": "page_view",
        "occurred_at": "2026-01-02T09:00:00Z",
    }
    path = write(
        tmp_path / "squat.jsonl",
        [
            {**capture, "occurred_at": "2026-01-01T09:00:00Z"},
            {**engaged, "event_id": "e-0", "command_id": "engagement:anything:e-1"},
            {**capture, "occurred_at": "2026-01-03T09:00:00Z", "command_id": "sha256:00ff"},
            engaged,
        ],
    )
    run = cli("import", str(path))
    assert run.code == 1
    assert run.lines[0] == (
        "line 2: command id 'engagement:anything:e-1' starts with 'engagement:', which "
        "leadflow reserves for the ids it derives (engagements, import lines without an id)"
    )
    assert run.lines[1].startswith("line 3: command id 'sha256:00ff' starts with 'sha256:'")
    assert run.lines[-1] == "applied 2, duplicate 0, rejected 2, total 4"
    refused = cli("log-contact", "ns@x.com", "--channel", "call", "--command-id", "sha256:1")
    assert refused.code == 1
    assert "--command-id: command id 'sha256:1' starts with 'sha256:'" in refused.err


def test_a_reused_command_id_is_refused_naming_it(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "reuse.jsonl",
        [
            {
                "command": "open_deal",
                "deal": "D-9",
                "amount": 100,
                "occurred_at": "2026-01-01T09:00:00Z",
                "command_id": "c-3",
            },
            {
                "command": "win_deal",
                "deal": "D-9",
                "occurred_at": "2026-01-02T09:00:00Z",
                "command_id": "c-3",
            },
        ],
    )

    run = cli("import", str(path))
    deal = cli("deal", "show", "D-9", "--json")

    assert run.code == 1
    assert run.lines == [
        "line 2: command id 'c-3' was already used for a different command (open_deal D-9); "
        "send a new id",
        "applied 1, duplicate 0, rejected 1, total 2",
    ]
    assert json.loads(deal.out)["stage"] != "won"


def _generated(rng: random.Random, count: int) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for n in range(count):
        lead = f"l{rng.randrange(count // 4)}@x.com"
        at = (T0 + timedelta(hours=rng.randrange(200))).isoformat()
        kind = rng.choice(
            ["capture_lead", "capture_lead", "mark_mql", "accept_lead", "log_contact"]
        )
        line: dict[str, object] = {"command": kind, "lead": lead, "occurred_at": at}
        if kind == "capture_lead":
            line["source"] = "web"
        if kind == "log_contact":
            line["channel"] = "call"
            line["outcome"] = f"call {n}"
        lines.append(line)
    return lines


def _funnel(data_dir: Path) -> object:
    run = run_subprocess(data_dir, "funnel", "--json")
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_an_import_killed_at_a_random_point_and_run_again_ends_like_a_clean_run(
    tmp_path: Path,
) -> None:
    rng = random.Random(11)
    path = write(tmp_path / "big.jsonl", _generated(rng, 20_000))
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    clean_run = run_subprocess(clean, "import", str(path), "--json")
    crashed.mkdir(mode=0o700)

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_DATA_DIR": str(crashed), "LEADFLOW_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [str(LEADFLOW), "import", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    delay = random.uniform(1.5, 4.0)  # a clean run of this file takes longer
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, f"the import ended before the kill at {delay:.2f} s"
    rerun = run_subprocess(crashed, "import", str(path), "--json")

    once, again = json.loads(clean_run.out), json.loads(rerun.out)
    assert _without_ids(again["rejections"]) == _without_ids(once["rejections"])
    assert again["applied"] + again["duplicate"] == once["applied"] + once["duplicate"]
    assert _funnel(crashed) == _funnel(clean), f"killed after {delay:.2f} s"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _without_ids(rejections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each refusal with the lead ids it names left out: each store gives its leads their
    own random ids."""
    return [{**r, "reason": _UUID.sub("<id>", r["reason"])} for r in rejections]
