"""The signed log against an attacker with file or database access but without the
audit key (issue 12), on SQLite and PostgreSQL: every attack, followed by
``leadflow rebuild``, makes ``leadflow verify`` exit 3 naming the problem, and
``leadflow history`` of an affected lead exit 3."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from tests.e2e.cli.conftest import Cli
from tests.e2e.cli.log_attacker import Attacker, copy_of_store, restore
from tests.store_ids import deal_uuid, lead_uuid

ADA, BOB = "ada@example.com", "bob@example.com"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def signed(
    request: pytest.FixtureRequest, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A store (SQLite or a PostgreSQL schema of its own) signed by a new audit key and
    witnessed outside the data dir; yields the witness file."""
    if request.param == "postgres":
        monkeypatch.setenv("LEADFLOW_POSTGRES_DSN", request.getfixturevalue("postgres_dsn"))
        monkeypatch.setenv("LEADFLOW_POSTGRES_SCHEMA", f"t_{uuid4().hex[:12]}")
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "audit.pem"
    assert cli("audit", "keygen", "--out", str(key)).code == 0
    witness = tmp_path / "witness.jsonl"
    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(key))
    monkeypatch.setenv("LEADFLOW_AUDIT_WITNESS", str(witness))
    yield witness


@pytest.fixture
def attacker(signed: Path) -> Iterator[Attacker]:
    del signed
    attacker = Attacker()
    yield attacker
    attacker.close()


def _two_leads(cli: Cli) -> None:
    """Bob (first in the log), then Ada with a won deal of 32,000."""
    for argv in (
        ("capture-lead", BOB, "--source", "web"),
        ("capture-lead", ADA, "--source", "web"),
        ("fast-track", ADA, "--to", "sql", "--reason", "demo request"),
        ("open-deal", "D-1", "--amount", "32000", "--lead", ADA),
        ("win-deal", "D-1"),
    ):
        run = cli(*argv)
        assert run.code == 0, run.err


def _history_fails(cli: Cli, lead: str) -> None:
    history = cli("history", lead)
    assert history.code == 3, history.out + history.err
    assert "signed log" in history.out + history.err


def _verify_fails(cli: Cli, *expected: str) -> str:
    rebuilt = cli("rebuild")  # 3 when events the attacker moved cannot be projected
    assert rebuilt.code in (0, 3) and "unexpected" not in rebuilt.err, rebuilt.err
    verify = cli("verify")
    assert verify.code == 3, verify.out + verify.err
    for text in expected:
        assert text in verify.out, verify.out
    assert verify.lines[-1].startswith("verify FAILED: "), verify.out  # the last word too
    return verify.out


def test_keygen_writes_a_private_key_only_its_owner_reads(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    run = cli("audit", "keygen", "--out", str(out))

    assert run.code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert b"PUBLIC KEY" in (tmp_path / "k.pem.pub").read_bytes()
    again = cli("audit", "keygen", "--out", str(out))
    assert again.code == 1
    assert "already exists" in again.err


def test_an_untouched_signed_store_verifies_and_every_head_is_witnessed(
    cli: Cli, signed: Path
) -> None:
    _two_leads(cli)

    verify = cli("verify")

    assert verify.code == 0, verify.out
    assert "signed log OK" in verify.out
    assert cli("history", ADA).code == 0
    heads = [json.loads(line) for line in signed.read_text().splitlines()]
    assert len(heads) == 5
    assert f"matches is at notification {heads[-1]['position']}" in verify.out


def test_without_a_key_verify_says_the_log_is_not_anchored(cli: Cli) -> None:
    _two_leads(cli)

    verify = cli("verify")

    assert verify.code == 0
    assert "NOT ANCHORED" in verify.out


def test_an_edited_and_rechained_aggregate_is_reported(cli: Cli, attacker: Attacker) -> None:
    _two_leads(cli)
    deal = deal_uuid("D-1")
    opened = next(r for r in attacker.rows() if r.originator_id == deal and r.version == 1)
    data = opened.data()
    data["amount"] = "1.00"
    data["actor"] = "someone-else"
    attacker.write_state(deal, 1, data)
    attacker.rechain_aggregate(deal)
    attacker.rechain_log()

    out = _verify_fails(cli, "do not match the signed head", str(deal))
    _history_fails(cli, ADA)

    assert "broken chain" not in out  # the aggregate's own chain was recomputed


def test_an_aggregate_last_event_deleted_is_reported(cli: Cli, attacker: Attacker) -> None:
    _two_leads(cli)
    position = attacker.delete_event(deal_uuid("D-1"), 2)  # DealWon, the last event

    _verify_fails(cli, f"notification {position} is in the log chain but its event is not")
    _history_fails(cli, ADA)


def test_a_deleted_last_event_with_its_chain_and_head_is_reported(
    cli: Cli, attacker: Attacker
) -> None:
    _two_leads(cli)
    position = attacker.delete_event(deal_uuid("D-1"), 2)
    attacker.sql("DELETE FROM {chain} WHERE position >= ?", (position,))
    attacker.sql("DELETE FROM {heads} WHERE position >= ?", (position,))

    _verify_fails(cli, "witnessed head (line", f") at notification {position}", "rolled back")
    _history_fails(cli, ADA)


def test_a_whole_lead_deleted_and_the_log_rechained_is_reported(
    cli: Cli, attacker: Attacker
) -> None:
    _two_leads(cli)
    attacker.sql("DELETE FROM {events} WHERE originator_id = ?", (attacker._id(lead_uuid(BOB)),))
    attacker.rechain_log()

    _verify_fails(cli, "do not match the signed head at notification 2")
    _history_fails(cli, BOB)


def test_two_swapped_events_are_reported(cli: Cli, attacker: Attacker) -> None:
    _two_leads(cli)
    rows = attacker.rows()
    attacker.swap_positions(rows[0].position, rows[1].position)
    attacker.rechain_log()

    _verify_fails(cli, "do not match the signed head")
    _history_fails(cli, BOB)


def test_a_rollback_to_an_earlier_consistent_copy_is_reported(cli: Cli, attacker: Attacker) -> None:
    _two_leads(cli)
    earlier = copy_of_store(attacker)
    assert cli("capture-lead", "cy@example.com", "--source", "web").code == 0
    restore(attacker, earlier)

    _verify_fails(cli, "witnessed head", "rolled back to an earlier copy")
    _history_fails(cli, "cy@example.com")


def test_an_event_appended_without_the_key_is_reported(cli: Cli, attacker: Attacker) -> None:
    _two_leads(cli)
    last = attacker.rows()[-1]
    data = last.data()
    data["originator_version"] = last.version + 1
    attacker.sql(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        (attacker._id(last.originator_id), last.version + 1, last.topic, last.state),
    )
    attacker.rechain_log()

    _verify_fails(cli, "not covered by any signed head")
    _history_fails(cli, ADA)


def test_a_start_with_another_audit_key_is_refused(
    cli: Cli, signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    del signed
    _two_leads(cli)
    other = tmp_path / "keys" / "other.pem"
    assert cli("audit", "keygen", "--out", str(other)).code == 0
    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(other))

    run = cli("capture-lead", "cy@example.com", "--source", "web")

    assert run.code == 1
    assert "LEADFLOW_AUDIT_KEY_FILE" in run.err
    assert "signed with audit key id" in run.err


def test_a_witness_inside_the_data_dir_is_refused(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "k.pem"
    assert cli("audit", "keygen", "--out", str(key)).code == 0
    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(key))
    monkeypatch.setenv("LEADFLOW_AUDIT_WITNESS", str(data_dir / "witness.jsonl"))

    run = cli("capture-lead", ADA, "--source", "web")

    assert run.code == 1
    assert "LEADFLOW_AUDIT_WITNESS" in run.err
    assert "inside the data directory" in run.err


def test_a_rotated_key_signs_on_and_verify_checks_across_the_rotation(
    cli: Cli, signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    del signed
    old = tmp_path / "keys" / "audit.pem"
    new = tmp_path / "keys" / "next.pem"
    _two_leads(cli)
    assert cli("audit", "keygen", "--out", str(new)).code == 0

    rotated = cli("audit", "rotate-key", "--new-key", str(new))

    assert rotated.code == 0, rotated.err
    assert "rotated" in rotated.out
    assert cli("capture-lead", "cy@example.com", "--source", "web").code == 1  # old key
    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(new))
    assert cli("capture-lead", "cy@example.com", "--source", "web").code == 0
    for auditor_key in (f"{new}.pub", f"{old}.pub"):
        monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", auditor_key)
        verify = cli("verify")
        assert verify.code == 0, verify.out
        assert "signed log OK" in verify.out


def test_heads_signed_with_an_attacker_key_are_reported(
    cli: Cli, attacker: Attacker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_leads(cli)
    mine = tmp_path / "keys" / "mine.pem"
    assert cli("audit", "keygen", "--out", str(mine)).code == 0
    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(mine))
    attacker.db.execute("UPDATE {t} SET audit_key_id = NULL", t="leadflow_store_integrity")
    assert cli("capture-lead", "cy@example.com", "--source", "web").code == 0

    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(tmp_path / "keys" / "audit.pem.pub"))
    verify = cli("verify")

    assert verify.code == 3, verify.out + verify.err
    assert "does not verify with the audit keys" in verify.out


def _deal_amount_edited_and_rechained(attacker: Attacker, version: int) -> UUID:
    """D-1's amount at ``version`` (opened, won) set to 1.00, its hash chain recomputed."""
    deal = deal_uuid("D-1")
    data = next(r for r in attacker.rows() if r.originator_id == deal and r.version == version)
    attacker.write_state(deal, version, {**data.data(), "amount": "1.00"})
    attacker.rechain_aggregate(deal)
    return deal


def test_a_rechained_log_signed_over_by_a_later_write_is_reported(
    cli: Cli, attacker: Attacker
) -> None:
    """The attacker rewrites history, removes the store's signed heads and lets leadflow
    sign its next write on top: the earlier witnessed heads still tell."""
    _two_leads(cli)
    deal = _deal_amount_edited_and_rechained(attacker, version=1)
    attacker.rechain_log()
    attacker.sql("DELETE FROM {heads}")
    assert cli("capture-lead", "cy@example.com", "--source", "web").code == 0

    _verify_fails(cli, "do not match the witnessed head", str(deal))
    _history_fails(cli, ADA)


@pytest.mark.parametrize("evidence", ["integrity record", "witness"])
def test_an_emptied_chain_is_refused_at_start_never_chained_and_signed_again(
    cli: Cli, attacker: Attacker, monkeypatch: pytest.MonkeyPatch, evidence: str
) -> None:
    """The attacker edits a deal, re-chains it and empties the log chain, the signed
    heads and the snapshots, so the store looks like one from before the chain: the next
    write would chain and sign the edit. The integrity record says the chain was started;
    when the attacker clears that too, the witness still holds heads."""
    _two_leads(cli)
    _deal_amount_edited_and_rechained(attacker, version=2)
    snapshots = "stored_snapshots" if attacker.db.dialect == "sqlite" else "leadflow_snapshots"
    attacker.db.execute("DELETE FROM {t}", t=snapshots)
    attacker.sql("DELETE FROM {chain}")
    attacker.sql("DELETE FROM {heads}")
    if evidence == "witness":
        attacker.db.execute("UPDATE {t} SET log_chained_at = NULL", t="leadflow_store_integrity")
    else:
        monkeypatch.delenv("LEADFLOW_AUDIT_WITNESS")

    runs = [
        cli("capture-lead", "cy@example.com", "--source", "web"),
        cli("verify"),
        cli("deal", "show", "D-1"),
    ]

    for run in runs:
        assert run.code == 3, run.out + run.err
        [line] = [x for x in run.err.splitlines() if not x.startswith("{")]
        assert "holds events but no log chain and no signed head" in line
        assert ("witness" if evidence == "witness" else "log chain was started") in line
    assert attacker.sql("SELECT COUNT(*) FROM {chain}") == [(0,)]
    assert attacker.sql("SELECT COUNT(*) FROM {heads}") == [(0,)]


def test_a_witness_that_cannot_be_appended_to_does_not_fail_a_committed_command(
    cli: Cli, signed: Path
) -> None:
    signed.mkdir()  # the witness path is a directory: every append fails

    run = cli("capture-lead", ADA, "--source", "web")

    assert run.code == 0, run.err
    assert "witness_append_failed" in run.err


def test_a_forged_head_over_appended_events_is_reported_by_verify_and_history(
    cli: Cli, attacker: Attacker
) -> None:
    """history checks only the signature of the latest head that matches: a forged one
    there (the right link, not the key's signature) must not pass."""
    _two_leads(cli)
    last = attacker.rows()[-1]
    data = last.data()
    attacker.sql(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        (attacker._id(last.originator_id), last.version + 1, last.topic, last.state),
    )
    attacker.rechain_log()
    position, link = attacker.sql("SELECT position, link FROM {chain} ORDER BY position DESC")[0]
    key_id = attacker.sql("SELECT key_id FROM {heads}")[0][0]
    attacker.sql(
        "INSERT INTO {heads} (position, link, key_id, signature, signed_at) VALUES (?,?,?,?,?)",
        (position, link, key_id, bytes(64), data.get("recorded_at", "2026-01-01")),
    )

    _verify_fails(cli, f"signed head at notification {position}", "does not verify")
    _history_fails(cli, ADA)


def test_chain_and_head_rows_of_the_wrong_type_are_reported_never_a_crash(
    cli: Cli, attacker: Attacker
) -> None:
    if attacker.db.dialect != "sqlite":
        pytest.skip("PostgreSQL's bytea columns hold nothing but bytes")
    _two_leads(cli)
    attacker.sql("UPDATE {chain} SET link = 'text' WHERE position = 2")
    (first_head,) = attacker.sql("SELECT MIN(position) FROM {heads}")[0]
    attacker.sql("UPDATE {heads} SET signature = 42 WHERE position = ?", (first_head,))

    out = _verify_fails(
        cli, "notification 2 (aggregate", f"signed head at notification {first_head}"
    )

    assert "unexpected" not in out
