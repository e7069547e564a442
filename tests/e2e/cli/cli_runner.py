"""Running ``leadflow`` as a real subprocess, and what tests read from its output."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LEADFLOW = Path(sys.executable).parent / "leadflow"


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def messages(self) -> list[str]:
        """stderr without structlog's JSON lines: what a person reads."""
        return [line for line in self.err.splitlines() if not line.startswith("{")]


def run_subprocess(data_dir: Path, *argv: str, stdin: bytes | None = None) -> CliRun:
    """``.venv/bin/leadflow ARGV`` as a real process with only ``LEADFLOW_DATA_DIR`` set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_DATA_DIR": str(data_dir), "LEADFLOW_LOG_FORMAT": "json"}
    done = subprocess.run(
        [str(LEADFLOW), *argv], input=stdin, capture_output=True, env=env, timeout=900, check=False
    )
    return CliRun(done.returncode, done.stdout.decode(), done.stderr.decode())
