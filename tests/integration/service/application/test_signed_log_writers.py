"""The signed log under concurrent writers (SQLite and PostgreSQL): every event gets one
chain entry, entries never interleave, every transaction's head is signed and witnessed,
and the log verifies; and (SQLite) any single byte changed in any stored event or chain
link is reported."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.audit_keys import generate_key_pair
from adapters.audit_settings import AuditSettings
from adapters.settings import Settings
from adapters.store_db import StoreDb
from adapters.store_integrity import StoreTampered
from domain import commands as c
from leadflow.bootstrap import open_application, verify_signed_log

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PER_WRITER = 8


def _signed(store_settings: Settings, tmp_path: Path) -> Settings:
    keys = tmp_path / "keys"
    keys.mkdir(exist_ok=True)
    generate_key_pair(keys / "audit.pem")
    audit = AuditSettings(key_file=keys / "audit.pem", witness=tmp_path / "witness.jsonl")
    return store_settings.model_copy(update={"audit": audit})


def _write(settings: Settings, writer: int) -> None:
    app = open_application(settings)
    try:
        for n in range(PER_WRITER):
            app.handle(
                c.CaptureLead(
                    lead=f"w{writer}-{n}@example.com",
                    source="web",
                    occurred_at=T0 + timedelta(minutes=n),
                )
            )
    finally:
        app.close()


def test_concurrent_writers_keep_one_chain_signed_and_witnessed(
    store_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    audit_dir = tmp_path_factory.mktemp("audit")  # outside the data dir
    signed = _signed(store_settings, audit_dir)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(_write, [signed] * 4, range(4)))

    app = open_application(signed)
    try:
        result = verify_signed_log(signed, app)
        stored = app.recorder.max_notification_id()
    finally:
        app.close()
    with StoreDb(signed.store) as db:
        positions = [p for (p,) in db.execute("SELECT position FROM {t}", t="leadflow_log_chain")]
        heads = db.execute("SELECT COUNT(*) FROM {t}", t="leadflow_signed_heads")[0][0]
    witnessed = (audit_dir / "witness.jsonl").read_text().splitlines()

    assert result.ok, result.problems
    assert result.events_checked == 4 * PER_WRITER * 2  # captured, then scored
    assert sorted(positions) == list(range(1, (stored or 0) + 1))
    assert heads == len(witnessed) == 4 * PER_WRITER
    assert result.signed_up_to == stored


@pytest.fixture(scope="module")
def signed_sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("signed")
    signed = _signed(Settings().with_store(data_dir=root / "data", postgres_dsn=None), root)
    _write(signed, 0)
    return signed


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    column=st.sampled_from(["state", "link"]),
    row=st.integers(min_value=0, max_value=2 * PER_WRITER - 1),
    offset=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_single_changed_byte_is_reported(
    signed_sqlite_store: Settings, column: str, row: int, offset: int, bit: int
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(signed_sqlite_store.store.data_dir, copy)
        table, key = (
            ("stored_events", "rowid") if column == "state" else ("leadflow_log_chain", "position")
        )
        with sqlite3.connect(copy / "events.sqlite3") as db:
            (value,) = db.execute(
                f"SELECT {column} FROM {table} WHERE {key} = ?", (row + 1,)
            ).fetchone()
            data = bytearray(value)
            data[offset % len(data)] ^= 1 << bit
            db.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (bytes(data), row + 1))
        tampered = signed_sqlite_store.with_store(data_dir=copy)
        app = open_application(tampered)
        try:
            result = verify_signed_log(tampered, app)
        finally:
            app.close()

    assert not result.ok
    assert f"notification {row + 1}" in " ".join(str(p) for p in result.problems)


def test_a_store_written_before_the_chain_is_chained_at_start(
    store_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _write(store_settings, 0)
    _as_before_the_chain(store_settings)
    signed = _signed(store_settings, tmp_path_factory.mktemp("audit"))

    _write(signed, 1)

    app = open_application(signed)
    try:
        result = verify_signed_log(signed, app)
        stored = app.recorder.max_notification_id()
    finally:
        app.close()
    assert result.ok, result.problems
    assert result.events_checked == 2 * 2 * PER_WRITER
    assert result.signed_up_to == stored


def _as_before_the_chain(settings: Settings, *, integrity_record_too: bool = True) -> None:
    """Empty the log chain and signed heads (and the integrity record's mark that the
    chain was started): what a store of a leadflow from before the chain looks like."""
    with StoreDb(settings.store) as db:
        for table in ("leadflow_log_chain", "leadflow_signed_heads"):
            db.execute("DELETE FROM {t}", t=table)
        if integrity_record_too:
            db.execute("UPDATE {t} SET log_chained_at = NULL", t="leadflow_store_integrity")


@pytest.mark.parametrize("evidence", ["integrity record", "witness"])
def test_a_store_whose_chain_was_emptied_is_refused_never_chained_again(
    store_settings: Settings, tmp_path_factory: pytest.TempPathFactory, evidence: str
) -> None:
    """Emptied to have the next write sign edited events: the integrity record says the
    chain was started, or (the record emptied too) the witness holds heads."""
    signed = _signed(store_settings, tmp_path_factory.mktemp("audit"))
    _write(signed, 0)
    _as_before_the_chain(signed, integrity_record_too=evidence == "witness")

    told = {"integrity record": "records that its log chain was started", "witness": "witness"}
    with pytest.raises(StoreTampered, match=f"no log chain and no signed head.*{told[evidence]}"):
        open_application(signed)

    with StoreDb(signed.store) as db:
        assert db.execute("SELECT COUNT(*) FROM {t}", t="leadflow_log_chain") == [(0,)]
