"""``leadflow api-key create | list | revoke`` and ``leadflow serve`` as real processes: the
token printed once, never listed; refusals are one line with exit 1."""

from __future__ import annotations

import socket
from pathlib import Path

from benchmarks.serve_process import free_port
from tests.e2e.api.served import leadflow_env, run_cli


def test_create_list_revoke(tmp_path: Path) -> None:
    env = leadflow_env(tmp_path / "data")
    made = run_cli(env, "api-key", "create", "--role", "auditor", "--name", "audit-bot")
    assert made.returncode == 0, made.stderr
    token = made.stdout.split("store it now): ")[1].strip()
    listed = run_cli(env, "api-key", "list")
    assert listed.returncode == 0
    assert "audit-bot" in listed.stdout and "auditor" in listed.stdout
    assert token not in listed.stdout
    again = run_cli(env, "api-key", "create", "--role", "sales", "--name", "audit-bot")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        "leadflow api-key: an active key is already named 'audit-bot'; "
        "revoke it first or pick another"
    )
    revoked = run_cli(env, "api-key", "revoke", "audit-bot")
    assert revoked.returncode == 0 and "revoked API key 'audit-bot'" in revoked.stdout
    gone = run_cli(env, "api-key", "revoke", "audit-bot")
    assert gone.returncode == 1
    assert "no active API key named or with id 'audit-bot'" in gone.stderr


def test_bad_role_and_port_are_refused_by_the_parser(tmp_path: Path) -> None:
    env = leadflow_env(tmp_path / "data")
    role = run_cli(env, "api-key", "create", "--role", "root", "--name", "x")
    assert role.returncode == 2 and "invalid choice: 'root'" in role.stderr
    port = run_cli(env, "serve", "--port", "99999")
    assert port.returncode == 2 and "'99999' is not a TCP port (1-65535)" in port.stderr


def test_serve_refuses_what_would_stop_it_in_one_line(tmp_path: Path) -> None:
    bad_key = leadflow_env(tmp_path / "data", cipher_key="not-a-key")
    refused = run_cli(bad_key, "serve", "--port", str(free_port()))
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith("leadflow serve: LEADFLOW_CIPHER_KEY is not valid base64")
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli(leadflow_env(tmp_path / "data"), "serve", "--port", str(port))
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines()[-1] == (
        f"leadflow serve: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
