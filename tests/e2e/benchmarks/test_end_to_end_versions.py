"""The versions the ``end_to_end`` watcher awaits: each record's own effect, never a
version its lead had before the record (which the watcher would see at once)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.end_to_end import engagement_record, versions_after_one_record
from benchmarks.workload import capture
from leadflow.bootstrap import load_settings, open_application


def test_a_known_lead_is_awaited_past_its_capture(tmp_path: Path) -> None:
    new_lead, known_lead = versions_after_one_record(tmp_path)
    settings = load_settings().with_store(data_dir=tmp_path / "captured", postgres_dsn=None)
    with open_application(settings, default_actor="test") as app:
        lead, _ = engagement_record("versions", 1, new_lead=False)
        app.handle_many([capture(lead)])  # as the benchmark captures its known leads
        captured = app.get_lead(lead).version
    assert known_lead > captured
    assert new_lead > captured
