"""What the local Kafka and PostgreSQL launchers share.

Process and file helpers, and ``LocalServer``: the start sequence (prepare, check
the ports, launch, wait until ready), the lifecycle verbs, the log tail and the
command line, written once for both servers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import structlog

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = REPO_ROOT / ".run"
HOST = "127.0.0.1"
OWNER_FILE = "owner.pid"

log = structlog.get_logger(__name__)


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


def run_quietly(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to its end with no input, capturing its output as text."""
    return subprocess.run(
        command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, cwd=cwd
    )


def since(started: float) -> float:
    """Seconds since the monotonic ``started``, rounded for a log line."""
    return round(time.monotonic() - started, 2)


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


# --- one local server -------------------------------------------------------------------


def load_state(work_dir: Path | str | None, state_file: str) -> tuple[Path | None, dict[str, Any]]:
    """The resolved ``work_dir`` and the state a previous start saved in it (or ``{}``)."""
    given = Path(work_dir).resolve() if work_dir is not None else None
    if given is None or not (given / state_file).exists():
        return given, {}
    return given, read_json(given / state_file)


class LocalServer(ABC):
    """A server process on 127.0.0.1 that owns ``work_dir`` and can be stopped and restarted.

    Subclasses say how to prepare, launch and probe their server; the order of a
    start, the waiting, the failure messages and the verbs are the same for all.
    """

    log_name: ClassVar[str]  # prefix of the log events: "kafka", "postgres"
    title: ClassVar[str]  # for messages: "Kafka broker", "PostgreSQL"
    noun: ClassVar[str]  # what `status` says is absent: "broker", "server"
    state_file: ClassVar[str]
    address_format: ClassVar[str]  # what clients connect to, from {host} and {port}
    port_help: ClassVar[str]  # the command line's --port
    log_names: ClassVar[tuple[str, ...]]  # in the work dir; their tails explain a failed start

    def __init__(
        self,
        work_dir: Path | str | None = None,
        *,
        port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """Reuse the port (and whatever else it saved) of a server already in ``work_dir``."""
        given, self._saved = load_state(work_dir, self.state_file)
        self.port: int = self._saved.get("port") or port or free_port()
        self.work_dir = given or RUN_DIR / f"{self.log_name}-{self.port}"
        self.startup_timeout = startup_timeout
        self._restore(self._saved)

    @abstractmethod
    def _restore(self, saved: dict[str, Any]) -> None:
        """Take back what ``_state`` saved; the last step of ``__init__``."""

    @property
    def address(self) -> str:
        """What clients connect to (printed by ``start`` for scripts)."""
        return self.address_format.format(host=HOST, port=self.port)

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def log_files(self) -> tuple[Path, ...]:
        return tuple(self.work_dir / name for name in self.log_names)

    @abstractmethod
    def is_running(self) -> bool: ...

    @abstractmethod
    def stop(self, timeout: float = 30.0) -> None:
        """Shut down cleanly, crashing the server if that takes longer than ``timeout``."""

    @abstractmethod
    def kill(self) -> None:
        """Stop as a crash would, with no clean shutdown."""

    @abstractmethod
    def _ports(self) -> tuple[int, ...]: ...

    @abstractmethod
    def _prepare(self) -> None:
        """Create the work dir and, the first time, the server's data."""

    @abstractmethod
    def _launch(self, deadline: float) -> None:
        """Start the process and return once it is ready, or raise ``ServerStartError``."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """What ``broker.json`` / ``server.json`` keep besides the port."""

    def _save_state(self) -> None:
        write_json(self.work_dir / self.state_file, {"port": self.port, **self._state()})

    def _log_fields(self) -> dict[str, Any]:
        return {}

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (preparing its work dir the first time) and wait until it answers."""
        if self.is_running():
            log.info(f"{self.log_name}_already_running", **self._log_fields())
            return
        started = time.monotonic()
        self._prepare()
        for port in self._ports():
            if port_accepts(port):
                raise ServerStartError(
                    f"port {HOST}:{port} for the {self.title} in {self.work_dir} is already "
                    "taken by another process"
                )
        self._launch(time.monotonic() + self.startup_timeout)
        log.info(f"{self.log_name}_started", **self._log_fields(), seconds=since(started))

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server and delete its work dir."""
        self.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(f"--- {path} ---\n{tail(path, lines)}" for path in self.log_files)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # waiting -----------------------------------------------------------------------------

    def _wait_ready(
        self,
        deadline: float,
        probe: Callable[[], None],
        errors: tuple[type[Exception], ...],
        exited: Callable[[], int | None],
    ) -> None:
        """Call ``probe`` until it stops raising ``errors`` or ``deadline`` passes.

        ``exited`` returns the exit code once the process has died: a server that
        exits during start-up fails at once; one that never answers is killed.
        Either way the error carries the log tail.
        """
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = exited()
            if code is not None:
                raise ServerStartError(
                    f"{self.title} {self.address} exited during start-up (exit {code})\n"
                    f"{self.log_tail()}"
                )
            try:
                probe()
                return
            except errors as exc:
                last_error = exc
            time.sleep(0.25)
        self.kill()
        raise ServerStartError(
            f"{self.title} {self.address} did not answer within {self.startup_timeout:.0f}s "
            f"(last error: {last_error!r})\n{self.log_tail()}"
        )


def run_cli(
    server_class: type[LocalServer],
    argv: list[str] | None,
    prog: str,
    description: str | None,
    **extra: Callable[[], object],
) -> int:
    """The ``python -m deploy.<server>`` command line: start, stop, status, destroy (+ extra).

    The default work dir is ``.run/<log_name>``. ``start`` prints the address,
    the one line scripts read; ``status`` exits 3 when the server is stopped or absent.
    """
    from adapters.logging import configure_logging  # noqa: PLC0415 - only for the CLI

    default_work_dir = RUN_DIR / server_class.log_name
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=["start", "stop", "status", *extra, "destroy"])
    parser.add_argument(
        "--work-dir", type=Path, default=default_work_dir, help=f"default: {default_work_dir}"
    )
    parser.add_argument("--port", type=int, help=server_class.port_help)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        return _run_command(args.command, server_class(args.work_dir, port=args.port), extra)
    except ServerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1


def _run_command(
    command: str, server: LocalServer, extra: Mapping[str, Callable[[], object]]
) -> int:
    if command in extra:
        extra[command]()
    elif command == "start":
        server.start()
        print(server.address)  # noqa: T201 - the one line scripts read
    elif command == "stop":
        server.stop()
    elif command == "destroy":
        server.destroy()
    elif not (server.work_dir / server.state_file).exists():
        print(f"absent: no {server.noun} in {server.work_dir}")  # noqa: T201
        return 3
    else:
        running = server.is_running()
        print(f"{'running' if running else 'stopped'} {server.address} {server.work_dir}")  # noqa: T201
        return 0 if running else 3
    return 0
