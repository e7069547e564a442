"""The privacy master key through ``leadflow``: created on first start, named by
``LEADFLOW_PRIVACY_MASTER_KEY_FILE``, and one per store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.privacy_keys import DEFAULT_FILE_NAME, KEY_SETTING
from tests.e2e.cli.conftest import Cli

ADA = "ada@example.com"


def _capture(cli: Cli) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0


def test_the_first_start_creates_a_private_key_beside_the_databases(
    cli: Cli, data_dir: Path
) -> None:
    _capture(cli)

    key_file = data_dir / DEFAULT_FILE_NAME
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().startswith("leadflow-privacy-master-key-v1 ")
    secret = key_file.read_text().split()[1].encode()
    databases = list(data_dir.glob("*.sqlite3*"))
    assert data_dir / "events.sqlite3" in databases
    assert not any(secret in database.read_bytes() for database in databases)


def test_the_key_moved_to_a_secret_store_and_named_keeps_the_store_working(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _capture(cli)
    secret = tmp_path / "secrets" / "leadflow.key"
    secret.parent.mkdir()
    shutil.move(data_dir / DEFAULT_FILE_NAME, secret)
    monkeypatch.setenv(KEY_SETTING, str(secret))

    assert cli("mark-mql", ADA).code == 0
    assert not (data_dir / DEFAULT_FILE_NAME).exists()


def test_a_store_opened_with_another_master_key_is_one_line_and_exit_1(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _capture(cli)
    (data_dir / DEFAULT_FILE_NAME).unlink()  # the key lost: a new one is created, refused

    run = cli("lead", "show", ADA)

    assert run.code == 1
    [message] = run.messages
    assert message.startswith(f"leadflow lead: {KEY_SETTING}: the event store at ")
    assert f"({KEY_SETTING} is not set)" in message
    assert "second lead" in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        ("not a key\n", "is not a privacy master key"),
        ("leadflow-privacy-master-key-v1 !!!\n", "not valid base64"),
        ("leadflow-privacy-master-key-v1 c2hvcnQ=\n", "has 5 bytes; a master key has 32"),
    ],
)
def test_a_named_key_file_that_is_not_a_key_is_one_line_naming_the_variable(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, problem: str
) -> None:
    key_file = tmp_path / "master.key"
    if content is not None:
        key_file.write_text(content)
    monkeypatch.setenv(KEY_SETTING, str(key_file))

    run = cli("capture-lead", ADA, "--source", "web")

    assert run.code == 1
    [message] = run.messages
    assert message.startswith(f"leadflow capture-lead: {KEY_SETTING}: ")
    assert problem in message
    assert str(key_file) in message
