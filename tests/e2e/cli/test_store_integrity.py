"""The CLI on a store an attacker or a wrong setting touched: a forged topic is never
imported, damaged events are named with exit 3, mismatched settings are refused in one
line before anything is written."""

from __future__ import annotations

import base64
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.event_store import key_fingerprint
from service.ids import deal_id_for, lead_id_for
from tests.e2e.cli.conftest import Cli

ADA = "ada@example.com"
KEY = base64.b64encode(bytes(range(16))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 17))).decode()


def _deal_of_ada(cli: Cli) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    assert cli("fast-track", ADA, "--to", "sql", "--reason", "demo request").code == 0
    assert cli("open-deal", "D-1", "--amount", "100", "--lead", ADA).code == 0


def _sql(data_dir: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        return db.execute(statement, params).fetchall()


def _stored_events(data_dir: Path) -> int:
    return int(_sql(data_dir, "SELECT COUNT(*) FROM stored_events")[0][0])


def test_a_forged_topic_is_named_and_never_imported(cli: Cli, data_dir: Path) -> None:
    _deal_of_ada(cli)
    deal_id = deal_id_for("D-1")
    _sql(
        data_dir,
        "UPDATE stored_events SET topic = 'this:s' WHERE originator_id = ? "
        "AND originator_version = 1",
        deal_id.hex,
    )
    sys.modules.pop("this", None)

    shown = cli("deal", "show", "D-1")
    history = cli("history", ADA)
    verify = cli("verify")

    assert "this" not in sys.modules
    expected = (
        f"stored event 1 of aggregate {deal_id} has topic 'this:s', which is not a leadflow event"
    )
    assert shown.code == 3
    assert shown.messages == [f"leadflow deal: {expected}"]
    assert history.code == 3
    assert expected in history.out
    assert verify.code == 3
    assert f"aggregate {deal_id}: hash chain broken at version 1" in verify.out
    assert "not a leadflow event" in verify.out


def test_a_forged_topic_on_the_first_event_of_a_lead(cli: Cli, data_dir: Path) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    lead_id = lead_id_for(ADA)
    _sql(
        data_dir,
        "UPDATE stored_events SET topic = 'this:s' WHERE originator_id = ? "
        "AND originator_version = 1",
        lead_id.hex,
    )
    history = cli("history", ADA)
    assert history.code == 3
    assert f"stored event 1 of aggregate {lead_id} has topic 'this:s'" in history.out


def test_verify_names_an_event_that_cannot_be_decrypted(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_CIPHER_KEY", KEY)
    _deal_of_ada(cli)
    deal_id = deal_id_for("D-1")
    _sql(
        data_dir,
        "UPDATE stored_events SET state = zeroblob(64) WHERE originator_id = ? "
        "AND originator_version = 1",
        deal_id.hex,
    )
    verify = cli("verify")
    history = cli("history", ADA)
    shown = cli("deal", "show", "D-1")

    assert verify.code == 3, verify.err
    assert (
        f"broken chain: aggregate {deal_id}: hash chain broken at version 1: event 1 cannot "
        "be decoded: ValueError: Invalid cipher tag"
    ) in verify.lines
    assert history.code == 3
    assert "Invalid cipher tag" in history.out
    assert shown.code == 3
    assert shown.messages == [
        f"leadflow deal: stored event 1 of aggregate {deal_id} cannot be decoded: "
        "ValueError: Invalid cipher tag"
    ]


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        (
            {"LEADFLOW_CIPHER_KEY": KEY},
            {"LEADFLOW_CIPHER_KEY": OTHER_KEY},
            "LEADFLOW_CIPHER_KEY: the event store at {store} is encrypted with key fingerprint "
            "{fp}; this key's fingerprint is {other_fp} (changing the key of an existing "
            "store is refused)",
        ),
        (
            {"LEADFLOW_CIPHER_KEY": KEY},
            {},
            "LEADFLOW_CIPHER_KEY: the event store at {store} is encrypted (key fingerprint "
            "{fp}); LEADFLOW_CIPHER_KEY is not set",
        ),
        (
            {},
            {"LEADFLOW_CIPHER_KEY": KEY},
            "LEADFLOW_CIPHER_KEY: the event store at {store} is not encrypted; "
            "LEADFLOW_CIPHER_KEY is set (encrypting an existing store is not supported)",
        ),
        (
            {},
            {"LEADFLOW_COMPRESS_EVENTS": "true"},
            "LEADFLOW_COMPRESS_EVENTS: the events of the event store at {store} are not "
            "compressed; the setting says true",
        ),
        (
            {"LEADFLOW_COMPRESS_EVENTS": "true"},
            {},
            "LEADFLOW_COMPRESS_EVENTS: the events of the event store at {store} are "
            "compressed; the setting says false",
        ),
    ],
    ids=["other-key", "no-key", "key-on-plain", "compress-on-plain", "plain-on-compressed"],
)
def test_mismatched_settings_are_refused_in_one_line_before_anything_is_written(
    cli: Cli,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: dict[str, str],
    then: dict[str, str],
    message: str,
) -> None:
    for name, value in first.items():
        monkeypatch.setenv(name, value)
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    before = _stored_events(data_dir)
    for name in first:
        monkeypatch.delenv(name)
    for name, value in then.items():
        monkeypatch.setenv(name, value)

    for argv in (("capture-lead", "bob@example.com", "--source", "web"), ("verify",)):
        refused = cli(*argv)
        assert refused.code == 1
        assert refused.messages == [
            f"leadflow {argv[0]}: "
            + message.format(
                store=data_dir / "events.sqlite3",
                fp=key_fingerprint(base64.b64decode(KEY)),
                other_fp=key_fingerprint(base64.b64decode(OTHER_KEY)),
            )
        ]
    assert _stored_events(data_dir) == before


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("not base64!", "LEADFLOW_CIPHER_KEY is not valid base64"),
        (base64.b64encode(b"short").decode(), "LEADFLOW_CIPHER_KEY decodes to 5 bytes"),
    ],
)
def test_a_malformed_key_is_named(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch, key: str, message: str
) -> None:
    monkeypatch.setenv("LEADFLOW_CIPHER_KEY", key)
    refused = cli("capture-lead", ADA, "--source", "web")
    assert refused.code == 1
    assert len(refused.messages) == 1
    assert refused.messages[0].startswith(f"leadflow capture-lead: {message}")
    assert "unexpected" not in refused.err


def test_a_key_without_the_crypto_extra_names_the_extra(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_CIPHER_KEY", KEY)
    monkeypatch.setitem(sys.modules, "cryptography", None)  # as if not installed
    refused = cli("capture-lead", ADA, "--source", "web")
    assert refused.code == 1
    assert refused.messages == [
        "leadflow capture-lead: LEADFLOW_CIPHER_KEY is set but the 'cryptography' package "
        "is not installed: pip install 'leadflow[crypto]'"
    ]


def test_a_snapshot_naming_a_foreign_class_is_refused_and_never_imported(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_SNAPSHOT_INTERVAL", "2")
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    assert cli("log-contact", ADA, "--channel", "email").code == 0
    lead_id = lead_id_for(ADA)
    [(version, state)] = _sql(
        data_dir,
        "SELECT originator_version, state FROM stored_snapshots WHERE originator_id = ?",
        lead_id.hex,
    )
    forged = json.loads(state)
    forged["topic"] = "this:s"
    _sql(
        data_dir,
        "UPDATE stored_snapshots SET state = ? WHERE originator_id = ?",
        json.dumps(forged).encode(),
        lead_id.hex,
    )
    sys.modules.pop("this", None)

    shown = cli("lead", "show", ADA)

    assert "this" not in sys.modules
    assert shown.code == 3
    assert shown.messages == [
        f"leadflow lead: stored snapshot {version} of aggregate {lead_id} cannot be decoded: "
        f"ValueError: snapshot at version {version} of aggregate {lead_id} has topic 'this:s', "
        "which is not a leadflow aggregate"
    ]
