"""The CLI on a store an attacker or a wrong setting touched: a forged topic is never
imported, damaged events are named with exit 3, mismatched settings are refused in one
line before anything is written. On SQLite and PostgreSQL where the store matters."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.event_store import key_fingerprint
from adapters.store_db import StoreDb
from leadflow.bootstrap import load_settings
from tests.e2e.cli.conftest import Cli
from tests.store_ids import deal_uuid, lead_uuid

ADA = "ada@example.com"
KEY = base64.b64encode(bytes(range(16))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 17))).decode()


def _deal_of_ada(cli: Cli) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    assert cli("fast-track", ADA, "--to", "sql", "--reason", "demo request").code == 0
    assert cli("open-deal", "D-1", "--amount", "100", "--lead", ADA).code == 0


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The event store the in-process CLI uses: SQLite in ``data_dir``, or PostgreSQL in
    a schema of its own."""
    if request.param == "postgres":
        monkeypatch.setenv("LEADFLOW_POSTGRES_DSN", request.getfixturevalue("postgres_dsn"))
        monkeypatch.setenv("LEADFLOW_POSTGRES_SCHEMA", f"t_{uuid4().hex[:12]}")
    return str(request.param)


def _sql(statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """``statement`` (``?`` placeholders) on the configured event store, as an attacker
    with database access would run it; ``{events}`` and ``{snapshots}`` are its tables."""
    with StoreDb(load_settings().store) as db:
        sqlite = db.dialect == "sqlite"
        prefix = "stored" if sqlite else "leadflow"
        values = [p.hex if sqlite and isinstance(p, UUID) else p for p in params]
        return db.execute(
            statement, values, events=f"{prefix}_events", snapshots=f"{prefix}_snapshots"
        )


def _stored_events() -> int:
    return int(_sql("SELECT COUNT(*) FROM {events}")[0][0])


def _location() -> str:
    with StoreDb(load_settings().store) as db:
        return db.location


def test_a_forged_topic_is_named_and_never_imported(cli: Cli, store: str) -> None:
    _deal_of_ada(cli)
    deal_id = deal_uuid("D-1")
    _sql(
        "UPDATE {events} SET topic = 'this:s' WHERE originator_id = ? AND originator_version = 1",
        deal_id,
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


def test_a_forged_topic_on_the_first_event_of_a_lead(cli: Cli, store: str) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    lead_id = lead_uuid(ADA)
    _sql(
        "UPDATE {events} SET topic = 'this:s' WHERE originator_id = ? AND originator_version = 1",
        lead_id,
    )
    history = cli("history", ADA)
    assert history.code == 3
    assert f"stored event 1 of aggregate {lead_id} has topic 'this:s'" in history.out


def test_verify_names_an_event_that_cannot_be_decrypted(
    cli: Cli, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_CIPHER_KEY", KEY)
    _deal_of_ada(cli)
    deal_id = deal_uuid("D-1")
    _sql(
        "UPDATE {events} SET state = ? WHERE originator_id = ? AND originator_version = 1",
        bytes(64),
        deal_id,
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
    store: str,
    monkeypatch: pytest.MonkeyPatch,
    first: dict[str, str],
    then: dict[str, str],
    message: str,
) -> None:
    for name, value in first.items():
        monkeypatch.setenv(name, value)
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    before = _stored_events()
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
                store=_location(),
                fp=key_fingerprint(base64.b64decode(KEY)),
                other_fp=key_fingerprint(base64.b64decode(OTHER_KEY)),
            )
        ]
    assert _stored_events() == before


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
    cli: Cli, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_SNAPSHOT_INTERVAL", "2")
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    assert cli("log-contact", ADA, "--channel", "email").code == 0
    lead_id = lead_uuid(ADA)
    [(version, state)] = _sql(
        "SELECT originator_version, state FROM {snapshots} WHERE originator_id = ?", lead_id
    )
    forged = json.loads(state)
    forged["topic"] = "this:s"
    _sql(
        "UPDATE {snapshots} SET state = ? WHERE originator_id = ?",
        json.dumps(forged).encode(),
        lead_id,
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


@pytest.mark.parametrize(
    "damage",
    [
        "state = NULL",
        "topic = NULL",
        "state = x'ff'",
        "state = CAST('[1]' AS BLOB)",
        "state = CAST('{{\"hash\": 1}}' AS BLOB)",  # braces doubled for the table names
        "topic = 'domain.events:DealWon'",
        "originator_version = 99",
    ],
)
def test_a_damaged_event_is_reported_never_a_crash(cli: Cli, data_dir: Path, damage: str) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    _sql(f"UPDATE {{events}} SET {damage} WHERE originator_version = 2")  # SQLite only

    runs = {argv: cli(*argv) for argv in (("verify",), ("history", ADA), ("lead", "show", ADA))}

    for argv, run in runs.items():
        assert "unexpected" not in run.err, (argv, run.err)
        if argv == ("lead", "show", ADA) and damage == "originator_version = 99":
            assert run.code == 0  # a gap in the versions: what remains still loads
            continue
        assert run.code == 3, (argv, run.out, run.err)
    assert len(runs["lead", "show", ADA].messages) <= 1
