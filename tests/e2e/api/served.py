"""``leadflow serve`` as a real process on a free port, and its API keys, made with the CLI."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.serve_process import LEADFLOW, serve_process

ROLES = ("marketing", "sales", "manager", "auditor", "admin")
_TOKEN = re.compile(r"token \(shown once, store it now\): (\S+)")


def leadflow_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a leadflow process: only the settings given (``LEADFLOW_*``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env |= {"LEADFLOW_DATA_DIR": str(data_dir), "LEADFLOW_LOG_FORMAT": "json"}
    return env | {f"LEADFLOW_{k.upper()}": v for k, v in settings.items()}


def run_cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LEADFLOW), *argv], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@dataclass
class Served:
    url: str
    env: dict[str, str]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None, **headers: str) -> httpx.Client:
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def create_key(self, role: str, name: str) -> str:
        done = run_cli(self.env, "api-key", "create", "--role", role, "--name", name)
        assert done.returncode == 0, done.stderr
        found = _TOKEN.search(done.stdout)
        assert found is not None, done.stdout
        return found.group(1)


@contextmanager
def serving(data_dir: Path, **settings: str) -> Iterator[Served]:
    """Start ``leadflow serve``, wait for /healthz, create one key per role; stop it after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = leadflow_env(data_dir, **settings)
    log = data_dir / "serve.log"
    with serve_process(env, log) as url:
        served = Served(url, env, log)
        served.tokens = {role: served.create_key(role, f"{role}-key") for role in ROLES}
        yield served
