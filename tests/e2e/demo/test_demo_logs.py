"""``leadflow demo`` and the read commands after it, at debug level, log no lead's email
(the demo's external ids, which hold the person's first and last name)."""

from __future__ import annotations

import json
from pathlib import Path

from domain import commands as c
from leadflow.demo.scenario import generate_quarter
from tests.e2e.demo.helpers import run_leadflow

LEADS = 30


def test_a_demo_run_logs_no_email(tmp_path: Path) -> None:
    emails = sorted(
        {cmd.lead for cmd in generate_quarter(leads=LEADS) if isinstance(cmd, c.CaptureLead)}
    )
    assert len(emails) == LEADS
    data_dir = tmp_path / "data"
    debug = {"LEADFLOW_LOG_LEVEL": "debug", "LEADFLOW_LOG_FORMAT": "json"}
    runs = [
        run_leadflow(data_dir, *args, env=debug)
        for args in (
            ("demo", "--leads", str(LEADS)),
            ("lead", "show", emails[0]),
            ("history", emails[1]),
            ("funnel",),
            ("verify",),
        )
    ]
    assert [run.returncode for run in runs] == [0] * len(runs), [r.stderr for r in runs]
    log_lines = [line for run in runs for line in run.stderr.splitlines() if line.startswith("{")]
    assert any(json.loads(line)["level"] == "debug" for line in log_lines)
    leaks = [(email, line) for line in log_lines for email in emails if email in line.lower()]
    assert not leaks, leaks[:10]
