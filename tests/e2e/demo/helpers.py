"""Embedded-mode settings and environments for demo and history tests.

They ignore any LEADFLOW_* variables of the test run (an external PostgreSQL or Kafka
configured for other tests must never receive demo data)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adapters.settings import Settings
from tests.settings_helpers import settings_with

LEADFLOW = str(Path(sys.executable).with_name("leadflow"))


def embedded_settings(data_dir: Path) -> Settings:
    return settings_with(data_dir=data_dir, postgres_dsn=None, kafka={"bootstrap": None})


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_DATA_DIR"] = str(data_dir)
    return env


def run_leadflow(
    data_dir: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``leadflow ARGS`` embedded on ``data_dir``; ``env`` adds ``LEADFLOW_*`` settings."""
    return subprocess.run(
        [LEADFLOW, *args],
        env=embedded_env(data_dir) | (env or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
