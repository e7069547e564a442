"""The privacy master key file: created once, private, and read strictly."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from adapters.event_store import StoreSettingsError
from adapters.privacy_keys import (
    DEFAULT_FILE_NAME,
    KEY_SETTING,
    key_file_text,
    load_master_key,
    master_key,
)


def test_a_new_data_dir_gets_a_private_key_that_later_starts_read(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    created = master_key(None, data_dir)
    again = master_key(None, data_dir)

    assert created.source == data_dir / DEFAULT_FILE_NAME
    assert created.source.stat().st_mode & 0o777 == 0o600
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert again.secret == created.secret
    assert len(created.secret) == 32
    assert [p.name for p in data_dir.iterdir()] == [DEFAULT_FILE_NAME]  # no temporary left


def test_two_data_dirs_get_unrelated_keys(tmp_path: Path) -> None:
    one, two = master_key(None, tmp_path / "a"), master_key(None, tmp_path / "b")
    assert one.secret != two.secret
    assert one.check_value != two.check_value


def test_sub_keys_differ_per_label_and_the_check_value_is_not_the_key(tmp_path: Path) -> None:
    key = master_key(None, tmp_path)

    ids, wrapping = key.derive("lead and deal ids"), key.derive("per-lead key wrapping")

    assert len(ids) == len(wrapping) == 32
    assert len({ids, wrapping, key.secret}) == 3
    assert key.derive("lead and deal ids") == ids
    assert len(key.check_value) == 32
    for secret in (key.secret, ids, wrapping):
        assert secret.hex()[:32] != key.check_value
    assert repr(key.secret) not in repr(key)


def test_a_named_key_file_is_used_as_it_is(tmp_path: Path) -> None:
    named = tmp_path / "secret.key"
    named.write_text(key_file_text(bytes(range(32))))

    key = master_key(named, tmp_path / "data")

    assert key.secret == bytes(range(32))
    assert not (tmp_path / "data").exists()  # nothing created beside the databases


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        ("", "is not a privacy master key"),
        ("leadflow-privacy-master-key-v2 AAAA\n", "is not a privacy master key"),
        ("leadflow-privacy-master-key-v1 not*base64\n", "not valid base64"),
        (
            f"leadflow-privacy-master-key-v1 {base64.b64encode(bytes(16)).decode()}\n",
            "has 16 bytes; a master key has 32",
        ),
    ],
)
def test_a_named_file_that_is_not_a_key_is_named_with_the_setting(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    named = tmp_path / "secret.key"
    if content is not None:
        named.write_text(content)

    with pytest.raises(StoreSettingsError) as refused:
        master_key(named, tmp_path / "data")

    message = str(refused.value)
    assert message.startswith(f"{KEY_SETTING}: ")
    assert str(named) in message
    assert problem in message


def test_a_key_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    named = tmp_path / "secret.key"
    named.write_bytes(b"\xff\xfe")
    with pytest.raises(StoreSettingsError, match="not ASCII text"):
        load_master_key(named, f"{KEY_SETTING}: ")
