"""Fixtures: an empty SQLite data dir, and ``leadflow`` run in-process through ``main([...])``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from leadflow.cli.main import main
from tests.e2e.cli.cli_runner import CliRun

Cli = Callable[..., CliRun]


@pytest.fixture(autouse=True)
def _forget_captured_stderr() -> Iterator[None]:
    """``main()`` points structlog at the current (captured) stderr; don't keep it after."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data dir that in-process ``main()`` uses, with nothing else configured."""
    for name in list(os.environ):
        if name.startswith("LEADFLOW_"):
            monkeypatch.delenv(name)
    directory = tmp_path / "data"
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(directory))
    monkeypatch.setenv("LEADFLOW_LOG_FORMAT", "json")
    return directory


@pytest.fixture
def cli(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("capture-lead", ...)`` runs ``main`` in-process: exit code, stdout, stderr."""

    def run(*argv: str) -> CliRun:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run
