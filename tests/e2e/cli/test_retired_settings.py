"""A variable an older leadflow read is refused in one line naming what replaced it,
never ignored without a word (an operator's retention would change silently)."""

from __future__ import annotations

import pytest

from tests.e2e.cli.conftest import Cli


def test_the_retired_kafka_retention_variable_is_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_KAFKA_RETENTION_MS", "-1")
    run = cli("funnel")
    assert run.code == 2
    assert run.messages == [
        "leadflow: configuration: LEADFLOW_KAFKA_RETENTION_MS is no longer read; set "
        "LEADFLOW_KAFKA_{EVENTS,QUALIFICATION,ENGAGEMENT,DEAD_LETTER}_RETENTION_MS "
        "(one per topic) instead"
    ]
