"""Small process and file helpers shared by the local Kafka and PostgreSQL launchers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = REPO_ROOT / ".run"
HOST = "127.0.0.1"
OWNER_FILE = "owner.pid"


class ServerStartError(RuntimeError):
    """A local server could not be started; the message says why and shows its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], deadline: float, interval: float = 0.1) -> bool:
    """Poll ``check`` until it returns True or the monotonic ``deadline`` passes."""
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a text file, or a note that it does not exist."""
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def pid_alive(pid: int, marker: str) -> bool:
    """True if process ``pid`` runs (not a zombie) and its command line contains ``marker``.

    The marker (a work dir path) guards against a recycled pid.
    """
    proc = Path(f"/proc/{pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and marker in cmdline


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def claim(work_dir: Path) -> None:
    """Record the current process as the owner of ``work_dir`` (see ``reap_orphans``)."""
    (work_dir / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")


def reap_orphans(root: Path, kill: Callable[[Path], None]) -> list[Path]:
    """Kill and delete work dirs under ``root`` whose owning process has died.

    A test session that was SIGKILLed cannot stop its servers; the next session
    calls this so they do not pile up. Dirs of live sessions are left alone.
    """
    reaped: list[Path] = []
    if not root.is_dir():
        return reaped
    for work_dir in sorted(root.iterdir()):
        owner_file = work_dir / OWNER_FILE
        try:
            owner = int(owner_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            continue
        if _process_exists(owner):
            continue
        with contextlib.suppress(Exception):  # best effort: never block a new session
            kill(work_dir)
        shutil.rmtree(work_dir, ignore_errors=True)
        reaped.append(work_dir)
    return reaped


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
