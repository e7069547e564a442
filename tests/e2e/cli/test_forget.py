"""``leadflow forget`` end to end, on SQLite and on PostgreSQL: a lead captured with an
email and personal attributes, engaged, contacted, qualified with BANT, converted into a
deal that is won, then forgotten. After it no file under the data directory (SQLite) and
no row of the store's schema (PostgreSQL) holds any of its personal values, verify is
OK, the funnel and the KPIs are unchanged, and its history keeps stages and times with
the personal fields erased."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.settings import StoreSettings
from domain.personal_fields import ERASED_TEXT
from tests.e2e.cli.conftest import Cli

pytestmark = pytest.mark.usefixtures("postgres_dsn")  # before data_dir clears the environment

EMAIL = "ada.lovelace@example.com"
PERSONAL = (
    "ada.lovelace",
    "Lovelace",
    "VP Analytical Engines",
    "+44 20 7946 0958",
    "07700 900123",
    "left a voicemail for Ada",
    "met Ada at the fair",
    "fifty thousand pounds",
    "Ada signs herself",
    "an engine that weaves",
    "before the Michaelmas term",
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "postgres":
        monkeypatch.setenv("LEADFLOW_POSTGRES_DSN", request.getfixturevalue("postgres_dsn"))
        monkeypatch.setenv("LEADFLOW_POSTGRES_SCHEMA", f"t_{uuid4().hex[:12]}")
    return str(request.param)


def _ok(cli: Cli, *argv: str) -> str:
    run = cli(*argv)
    assert run.code == 0, run.err
    return run.out


def _lifecycle(cli: Cli) -> None:
    _ok(
        cli, "capture-lead", EMAIL, "--source", "web", "--campaign", "spring",
        "--attr", "name=Ada Lovelace", "--attr", "title=VP Analytical Engines",
        "--attr", "phone=+44 20 7946 0958", "--attr", "industry=software",
        "--attr", "employees=250", "--attr", "country=gb",
        "--at", "2026-03-01T09:00Z", "--command-id", "crm-capture-1",
    )  # fmt: skip
    _ok(
        cli, "record-engagement", EMAIL, "--event-id", "form-1", "--kind", "demo_request",
        "--prop", "mobile=07700 900123", "--at", "2026-03-02T09:00Z",
    )  # fmt: skip
    _ok(
        cli, "log-contact", EMAIL, "--channel", "call",
        "--outcome", "left a voicemail for Ada", "--at", "2026-03-02T10:00Z",
    )  # fmt: skip
    _ok(
        cli, "accept-lead", EMAIL, "--owner", "sam",
        "--reason", "met Ada at the fair", "--at", "2026-03-03T09:00Z",
    )  # fmt: skip
    _ok(
        cli, "qualify-lead", EMAIL, "--budget", "fifty thousand pounds",
        "--authority", "Ada signs herself", "--need", "an engine that weaves",
        "--timeline", "before the Michaelmas term", "--at", "2026-03-04T09:00Z",
    )  # fmt: skip
    _ok(cli, "open-deal", "D-7", "--lead", EMAIL, "--amount", "50000", "--at", "2026-03-05T09:00Z")
    _ok(cli, "win-deal", "D-7", "--at", "2026-03-06T09:00Z")


def _reports(cli: Cli) -> tuple[Any, Any]:
    return json.loads(_ok(cli, "funnel", "--json")), json.loads(_ok(cli, "kpis", "--json"))


def _captured(funnel: Any) -> int:
    return int(next(s["reached"] for s in funnel["stages"] if s["stage"] == "new"))


def _sqlite_files(data_dir: Path) -> list[Path]:
    """Every file under the data dir, each SQLite database checkpointed first."""
    for database in data_dir.glob("*.sqlite3"):
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return [path for path in data_dir.rglob("*") if path.is_file()]


def _found_in_files(data_dir: Path) -> list[str]:
    found = []
    for path in _sqlite_files(data_dir):
        data = path.read_bytes()
        found += [f"{path.name}: {value}" for value in PERSONAL if value.encode() in data]
    return found


def _found_in_schema(store: StoreSettings) -> list[str]:
    """Every row of every table in the store's schema, as text and bytes."""
    assert store.dsn is not None
    found = []
    with psycopg.connect(store.dsn) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store.postgres_schema,),
        ).fetchall()
        for (table,) in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(store.postgres_schema, table))
            for row in connection.execute(query):
                data = b"\x00".join(
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
                )
                found += [f"{table}: {value}" for value in PERSONAL if value.encode() in data]
    return found


def test_forget_leaves_no_personal_value_and_changes_no_report(
    cli: Cli, store: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_SNAPSHOT_INTERVAL", "3")  # snapshots hold the plain state
    _lifecycle(cli)
    funnel, kpis = _reports(cli)

    run = cli("forget", EMAIL, "--reason", "GDPR erasure request 2026-117", "--actor", "dpo")
    assert run.code == 0, run.err
    assert run.out.startswith("erased: lead ") and "its 1 deals" in run.out
    assert ", 3 snapshots deleted," in run.out  # the lead's, every 3 versions
    assert run.out.rstrip().endswith(", its external id unlinked")
    lead_id = run.out.split()[2]

    if store == "sqlite":
        assert _found_in_files(data_dir) == []
    else:
        assert _found_in_schema(StoreSettings()) == []
    assert _reports(cli) == (funnel, kpis)
    assert cli("verify").code == 0

    history = json.loads(_ok(cli, "history", lead_id, "--json"))  # its email finds nothing
    assert history["verified"] is True
    events = {(e["aggregate"], e["type"]): e for e in history["events"]}
    captured = events["lead", "LeadCaptured"]["data"]
    assert captured["external_id"] == ERASED_TEXT
    assert captured["attributes"] == {
        "name": ERASED_TEXT,
        "title": ERASED_TEXT,
        "phone": ERASED_TEXT,
        "industry": "software",
        "employees": "250",
        "country": "gb",
    }
    assert events["lead", "EngagementRecorded"]["data"]["properties"] == {}
    assert events["lead", "ContactLogged"]["data"]["outcome"] == ERASED_TEXT
    assert set(events["lead", "LeadQualifiedAsSQL"]["data"]["bant"].values()) == {ERASED_TEXT}
    assert events["deal", "DealOpened"]["data"]["lead_external_id"] == ERASED_TEXT
    assert events["lead", "LeadQualifiedAsSQL"]["occurred_at"] == "2026-03-04T09:00:00Z"
    erased = events["lead", "LeadErased"]
    assert erased["actor"] == "dpo"
    assert erased["data"]["reason"] == "GDPR erasure request 2026-117"
    assert set(erased["data"]) == {"reason", "deal_ids"}  # nothing personal
    lead, deal = history["as_of"]["aggregates"]
    assert lead["state"]["stage"] == "converted"
    assert lead["state"]["reached"] == ["new", "mql", "sal", "sql", "converted"]
    assert deal["state"]["status"] == "won" and deal["state"]["amount"] == "50000"


def test_forget_answers_for_an_unknown_lead_a_second_time_and_later_commands(
    cli: Cli, store: str
) -> None:
    _ok(cli, "capture-lead", EMAIL, "--source", "web", "--attr", "name=Ada Lovelace")
    unknown = cli("forget", "nobody@example.com", "--reason", "request 1")
    assert unknown.code == 1
    assert unknown.messages == ["leadflow forget: lead 'nobody@example.com' does not exist"]
    lead_id = _ok(cli, "forget", EMAIL, "--reason", "request 2").split()[2]

    again = cli("forget", lead_id, "--reason", "request 3")
    assert again.code == 1
    assert len(again.messages) == 1 and "is already erased (since " in again.messages[0]
    later = cli("log-contact", lead_id, "--channel", "call", "--outcome", "hello")
    assert later.code == 1 and "is erased" in later.messages[0]
    for argv in (("forget", EMAIL, "--reason", "request 4"), ("lead", "show", EMAIL)):
        unlinked = cli(*argv)  # the email no longer leads to the erased lead
        assert unlinked.code == 1
        assert unlinked.messages[0].endswith(f"lead '{EMAIL}' does not exist")
    assert cli("verify").code == 0


def test_capturing_a_forgotten_email_again_makes_a_new_unlinked_lead(cli: Cli, store: str) -> None:
    _ok(cli, "capture-lead", EMAIL, "--source", "web", "--attr", "name=Ada Lovelace")
    _ok(cli, "capture-lead", "bob@example.com", "--source", "web")
    erased = _ok(cli, "forget", EMAIL, "--reason", "request 1").split()[2]
    funnel_before = json.loads(_ok(cli, "funnel", "--json"))

    _ok(cli, "capture-lead", EMAIL, "--source", "web", "--attr", "name=Ada")
    _ok(cli, "mark-mql", EMAIL)

    new = json.loads(_ok(cli, "lead", "show", EMAIL, "--json"))
    assert new["id"] != erased and new["stage"] == "mql"
    old = json.loads(_ok(cli, "lead", "show", erased, "--json"))
    assert old["erased_at"] is not None
    history = json.loads(_ok(cli, "history", erased, "--json"))
    assert history["verified"] is True
    assert [e["type"] for e in history["events"]][-1] == "LeadErased"
    assert cli("verify").code == 0
    funnel = json.loads(_ok(cli, "funnel", "--json"))
    assert _captured(funnel) == _captured(funnel_before) + 1  # both leads, and the new one


def test_an_altered_data_key_is_an_integrity_problem(cli: Cli, data_dir: Path) -> None:
    _ok(cli, "capture-lead", EMAIL, "--source", "web", "--attr", "name=Ada Lovelace")
    with sqlite3.connect(data_dir / "events.sqlite3") as connection:
        connection.execute("UPDATE leadflow_lead_keys SET wrapped_key = zeroblob(48)")
    run = cli("lead", "show", EMAIL)
    assert run.code == 3
    assert len(run.messages) == 1 and "cannot be unwrapped" in run.messages[0]
