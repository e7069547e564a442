"""The generated data set, built once per session into a SQLite event store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.settings import Settings
from domain import commands as c
from service.application import LeadflowApp
from tests.integration.projections.helpers import event_store
from tests.integration.projections.scenario import generate_commands


@dataclass(frozen=True)
class Scenario:
    commands: list[c.Command]
    settings: Settings
    app: LeadflowApp

    @property
    def events(self) -> int:
        return self.app.recorder.max_notification_id() or 0


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    commands = generate_commands(seed=7, leads=300)
    settings, app = event_store(tmp_path_factory.mktemp("scenario"), commands)
    yield Scenario(commands, settings, app)
    app.close()
