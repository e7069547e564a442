"""An application on each real store: SQLite in a temp dir and PostgreSQL in its own schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.settings import Settings
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from tests.settings_helpers import settings_with


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return settings_with(data_dir=tmp_path)
    dsn = request.getfixturevalue("postgres_dsn")
    return settings_with(
        data_dir=tmp_path, postgres_dsn=dsn, postgres_schema=f"t_{uuid4().hex[:12]}"
    )


@pytest.fixture
def app(store_settings: Settings) -> Iterator[LeadflowApp]:
    application = open_application(store_settings)
    yield application
    application.close()
