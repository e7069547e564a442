"""What leadflow prints cannot steer the terminal: control and bidi characters in stored
free text (a reason, an outcome) are printed as \\uXXXX escapes, and JSON output stays
valid JSON with the same values."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.cli.conftest import Cli

OVERRIDE = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
C1 = "\x9b"  # CONTROL SEQUENCE INTRODUCER


def test_stored_free_text_is_printed_escaped_and_json_keeps_it(cli: Cli, tmp_path: Path) -> None:
    outcome = f"left a message {OVERRIDE}gpj.exe{C1}31m"
    lines = [
        {
            "command": "capture_lead",
            "lead": "esc@x.com",
            "source": "web",
            "occurred_at": "2026-01-01T09:00:00Z",
        },
        {
            "command": "log_contact",
            "lead": "esc@x.com",
            "channel": "call",
            "outcome": outcome,
            "occurred_at": "2026-01-02T09:00:00Z",
        },
    ]
    path = tmp_path / "esc.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert cli("import", str(path)).code == 0

    text = cli("history", "esc@x.com")
    assert text.code == 0, text.err
    assert OVERRIDE not in text.out and C1 not in text.out
    assert "\\u202egpj.exe\\u009b31m" in text.out

    as_json = cli("history", "esc@x.com", "--json")
    assert OVERRIDE not in as_json.out
    events = json.loads(as_json.out)["events"]
    assert any(e["data"].get("outcome") == outcome for e in events)
