"""A ``leadflow serve`` process per test module, on SQLite (and one on PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.api.served import Served, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """On SQLite, with the rate limit off (the tests send many requests at once)."""
    with serving(tmp_path_factory.mktemp("serve") / "data", api_rate_per_second="0") as server:
        yield server


@pytest.fixture(scope="module")
def served_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str
) -> Iterator[Served]:
    schema = f"api_{uuid.uuid4().hex[:12]}"
    data_dir: Path = tmp_path_factory.mktemp("serve_pg") / "data"
    with serving(
        data_dir, postgres_dsn=postgres_dsn, postgres_schema=schema, api_rate_per_second="0"
    ) as server:
        yield server
