"""``leadflow serve`` as a real process on a free loopback port (for the ``http``
benchmark and the API's end-to-end tests)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

LEADFLOW = Path(sys.executable).parent / "leadflow"
START_SECONDS = 120.0


class ServeFailed(RuntimeError):
    """The process exited or never answered ``/healthz``; its log's tail says why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_process(env: dict[str, str], log_file: Path) -> Iterator[str]:
    """Start ``leadflow serve`` with ``env``, its output to ``log_file``; yield its base URL
    once ``/healthz`` answers; terminate it on exit."""
    port = free_port()
    with log_file.open("wb") as out:
        process = subprocess.Popen(
            [str(LEADFLOW), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log_file)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"leadflow serve exited: {log_file.read_text()[-2000:]}"
            raise ServeFailed(msg)
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    msg = f"leadflow serve did not answer /healthz in {START_SECONDS:g} s: "
    raise ServeFailed(msg + log_file.read_text()[-2000:])
