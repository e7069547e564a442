"""``leadflow api-key create | list | revoke`` as a real process: the token printed once,
never listed; refusals are one line with exit 1."""

from __future__ import annotations

from pathlib import Path

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
