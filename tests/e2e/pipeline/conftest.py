"""The privacy workload, run once per store kind and session for the tests that scan
what it left."""

from __future__ import annotations

import os

import pytest

from tests.e2e.pipeline.privacy_workload import Workload, run_workload


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def privacy_workload(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> Workload:
    """Under the usual umask (022), so a file leadflow does not make private shows up."""
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgresql" else None
    previous = os.umask(0o022)
    try:
        return run_workload(
            tmp_path_factory.mktemp(f"privacy-{request.param}"), kafka_bootstrap, dsn
        )
    finally:
        os.umask(previous)
