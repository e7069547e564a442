"""A real, throwaway PostgreSQL server (Debian's ``postgresql`` package) on 127.0.0.1.

Each server lives in its own work dir: ``data/`` (initdb; also holds the unix
socket), ``postgres.log`` and ``server.json`` with its port, so the same server
can be stopped and started again. PostgreSQL refuses to run as root, so when we
are root every server command runs as the ``postgres`` system user::

    python -m deploy.postgres.server start    # prints the DSN
    python -m deploy.postgres.server status
    python -m deploy.postgres.server stop
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import structlog
from psycopg import sql

from deploy._common import (
    HOST,
    LocalServer,
    ServerStartError,
    run_cli,
    run_quietly,
)

log = structlog.get_logger(__name__)

STATE_FILE = "server.json"
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
APP_USER = APP_DATABASE = "leadflow"
APP_PASSWORD = "leadflow"  # noqa: S105 - throwaway local server, 127.0.0.1 only

# Throwaway server: no fsync, so an OS crash may lose data, but a crashed or killed
# server keeps every acknowledged commit (synchronous_commit stays on for that:
# chaos tests kill PostgreSQL and expect committed rows back).
SERVER_CONFIG: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "'128MB'",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``pg_config --bindir`` or Debian's."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = run_quietly([pg_config, "--bindir"])
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=_major_version, reverse=True
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ServerStartError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's "
        "`postgresql` package (looked in: " + ", ".join(map(str, candidates)) + ")"
    )


def _major_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else 0


class PostgresServer(LocalServer):
    """One PostgreSQL server on 127.0.0.1 with role and database ``leadflow``."""

    log_name = "postgres"
    title = "PostgreSQL"
    noun = "server"
    state_file = STATE_FILE
    address_format = f"postgresql://{APP_USER}:{APP_PASSWORD}@{{host}}:{{port}}/{APP_DATABASE}"
    port_help = "port for a new work dir (default: free)"
    log_names = ("postgres.log",)

    _bindir: Path | None = None  # found on first use
    _initialised = False  # role and database created

    def _restore(self, saved: dict[str, Any]) -> None:
        self._initialised = bool(saved.get("initialised"))

    dsn = LocalServer.address

    @property
    def socket_dir(self) -> Path:
        """The data dir, unless the socket path would exceed the unix limit (~107 bytes)."""
        if len(f"{self.data_dir}/.s.PGSQL.{self.port}.lock") < 100:
            return self.data_dir
        return Path(tempfile.gettempdir()) / f"leadflow-pg-{self.port}"

    @property
    def admin_conninfo(self) -> str:
        """Superuser connection over the unix socket (trust auth)."""
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname=postgres"

    @property
    def server_log(self) -> Path:
        return self.log_files[0]

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    # lifecycle ---------------------------------------------------------------------------

    def stop(self, timeout: float = 60.0) -> None:
        """Fast shutdown (disconnects clients), falling back to an immediate one."""
        if not self.is_running():
            return
        try:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(int(timeout)))
        except ServerStartError:
            log.warning("postgres_fast_stop_failed_immediate", work_dir=str(self.work_dir))
            self.kill()
        log.info("postgres_stopped", port=self.port)

    def kill(self) -> None:
        """Crash-like stop (``immediate`` mode: no checkpoint, recovery on next start)."""
        if self.is_running():
            self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)])
        return result.returncode == 0

    def destroy(self) -> None:
        """Stop the server and delete its work dir (and its socket dir, if apart)."""
        super().destroy()
        if self.socket_dir != self.data_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    # start-up ----------------------------------------------------------------------------

    def _log_fields(self) -> dict[str, object]:
        return {"dsn": self.dsn}

    def _ports(self) -> tuple[int, ...]:
        return (self.port,)

    def _prepare(self) -> None:
        """Create the work dir (owned by the system user when we are root); initdb once."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._save_state()
        outside = self.socket_dir != self.data_dir
        if outside:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:  # initdb and pg_ctl -l create their files in here as postgres
            account = _system_account()
            for path in (self.work_dir, self.socket_dir) if outside else (self.work_dir,):
                os.chown(path, account.pw_uid, account.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

    def _launch(self, deadline: float) -> None:
        """``pg_ctl start -w`` waits until the server is ready; then check that we can log in."""
        timeout = str(max(1, round(deadline - time.monotonic())))
        self._pg_ctl("start", "-w", "-t", timeout, "-l", str(self.server_log))
        if not self._initialised:
            self._create_app_database()
        self._check_login()

    def _initdb(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed (exit {result.returncode}) in {self.data_dir}:\n"
                f"{result.stdout}{result.stderr}"
            )
        settings = {**SERVER_CONFIG, "port": str(self.port)}
        settings["unix_socket_directories"] = f"'{self.socket_dir}'"
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# deploy/postgres/server.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        log.info("postgres_initdb_done", data_dir=str(self.data_dir))

    def _create_app_database(self) -> None:
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(APP_PASSWORD)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(APP_DATABASE), sql.Identifier(APP_USER)
                )
            )
        self._initialised = True
        self._save_state()

    def _check_login(self) -> None:
        try:
            with psycopg.connect(self.dsn, connect_timeout=10) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise ServerStartError(
                f"PostgreSQL started but {self.dsn} cannot log in: {exc}\n{self.log_tail()}"
            ) from exc

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bindir / "pg_ctl"), args[0], "-D", str(self.data_dir), *args[1:]]
        result = self._run(command)
        if result.returncode != 0:
            raise ServerStartError(
                f"pg_ctl {args[0]} failed (exit {result.returncode}): "
                f"{result.stdout}{result.stderr}\n{self.log_tail()}"
            )

    def _run(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the ``postgres`` system user when we are root."""
        if os.geteuid() == 0:
            _system_account()
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        return run_quietly(command, cwd=self.work_dir if self.work_dir.exists() else None)

    def _state(self) -> dict[str, object]:
        return {"dsn": self.dsn, "initialised": self._initialised}


def _system_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ServerStartError(
            f"running as root, but there is no `{SYSTEM_USER}` system user to run PostgreSQL "
            "as (Debian's postgresql package creates it)"
        ) from None


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    return run_cli(PostgresServer, argv, "python -m deploy.postgres.server", __doc__)


if __name__ == "__main__":
    sys.exit(main())
