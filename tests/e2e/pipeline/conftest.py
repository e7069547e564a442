"""The privacy workload, run once per session for the tests that scan what it left."""

from __future__ import annotations

import os

import pytest

from tests.e2e.pipeline.privacy_workload import Workload, run_workload


@pytest.fixture(scope="session")
def privacy_workload(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Workload:
    """Under the usual umask (022), so a file leadflow does not make private shows up."""
    previous = os.umask(0o022)
    try:
        return run_workload(tmp_path_factory.mktemp("privacy"), kafka_bootstrap)
    finally:
        os.umask(previous)
