"""Random lead ids in a keyed index, one privacy master key per store, the ids of older
stores (keyed, uuid5) and ``secure_delete`` (SQLite and PostgreSQL, through the
composition root)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from adapters.event_store import StoreSettingsError
from adapters.lead_index import TABLE as INDEX_TABLE
from adapters.privacy_keys import DEFAULT_FILE_NAME, KEY_SETTING
from adapters.settings import Settings
from adapters.store_db import StoreDb
from adapters.store_integrity import TABLE
from domain import commands as c
from leadflow.bootstrap import keyed_ids, open_application, open_read_model, privacy_master_key
from service.ids import KeyedIds, Uuid5Ids
from service.indexed_ids import LEAD_INDEX_KEY_LABEL, IndexedIds
from tests.settings_helpers import settings_with

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADA, BOB = "ada@example.com", "bob@example.com"
# how leadflow derived a lead id before keyed ids: the namespace is in the published code
PUBLISHED_NAMESPACE = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")


def _capture(settings: Settings, ref: str = ADA) -> None:
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=ref, source="web", occurred_at=T0))


def _with_key_file(settings: Settings, key_file: Path) -> Settings:
    privacy = settings.privacy.model_copy(update={"master_key_file": key_file})
    return settings.model_copy(update={"privacy": privacy})


def _other_key(tmp_path: Path) -> Path:
    """A second master key, created as leadflow creates one in a new data dir."""
    return privacy_master_key(settings_with(data_dir=tmp_path / "other")).source


def test_the_email_and_the_code_without_the_key_do_not_give_the_lead_id(
    store_settings: Settings, tmp_path: Path
) -> None:
    _capture(store_settings)
    with open_application(store_settings) as app:
        lead = app.get_lead(ADA)
        assert app.ids.name == IndexedIds.name

    assert lead.id.version == 4  # random: nothing derives it, not even with the key
    assert lead.id != uuid5(PUBLISHED_NAMESPACE, f"lead:{ADA}")
    assert lead.id != Uuid5Ids().lead(ADA)
    assert lead.id != keyed_ids(privacy_master_key(store_settings)).lead(ADA)
    other = keyed_ids(privacy_master_key(_with_key_file(store_settings, _other_key(tmp_path))))
    assert lead.id != other.lead(ADA)
    with StoreDb(store_settings.store) as db:
        [(mac, lead_id)] = db.execute("SELECT ref_mac, lead_id FROM {t}", t=INDEX_TABLE)
    # the index holds a MAC under a sub-key of the master key: no email, no unkeyed digest
    assert UUID(lead_id) == lead.id
    assert ADA.encode() not in bytes(mac)
    assert bytes(mac) not in {
        hashlib.sha256(text.encode()).digest() for text in (ADA, f"lead:{ADA}")
    }
    index_key = privacy_master_key(store_settings).derive(LEAD_INDEX_KEY_LABEL)
    assert bytes(mac) == hmac.digest(index_key, f"lead:{ADA}".encode(), hashlib.sha256)


def test_two_stores_with_their_own_keys_give_the_same_email_unlinkable_ids(
    tmp_path: Path,
) -> None:
    first, second = settings_with(data_dir=tmp_path / "a"), settings_with(data_dir=tmp_path / "b")
    _capture(first)
    _capture(second)
    with open_application(first) as one, open_application(second) as two:
        assert one.get_lead(ADA).id != two.get_lead(ADA).id


def test_a_store_opened_with_another_master_key_is_refused_before_anything_is_written(
    store_settings: Settings, tmp_path: Path
) -> None:
    _capture(store_settings)
    other = _with_key_file(store_settings, _other_key(tmp_path))

    with pytest.raises(StoreSettingsError) as refused:
        open_application(other)

    message = str(refused.value)
    assert message.startswith(f"{KEY_SETTING}: ")
    assert "\n" not in message
    assert "second lead" in message
    with open_application(store_settings) as app:
        assert app.get_lead(ADA).stage == "new"
        assert app.recorder.max_notification_id() == 2  # captured and scored, nothing more


def test_the_created_key_file_is_private_and_beside_the_database_files(
    store_settings: Settings,
) -> None:
    _capture(store_settings)
    key_file = store_settings.store.data_dir / DEFAULT_FILE_NAME

    assert key_file.stat().st_mode & 0o777 == 0o600
    assert privacy_master_key(store_settings).source == key_file
    for database in (
        store_settings.store.sqlite_event_store,
        store_settings.store.sqlite_read_models,
    ):
        assert key_file != database
        assert key_file.parent == database.parent


def _make_it_an_older_store(settings: Settings) -> None:
    """The store as an older leadflow left it: uuid5-id events and an integrity record
    without the id scheme or the master key (its columns did not exist yet)."""
    with open_application(settings) as app:
        app.ids = Uuid5Ids()
        app.handle(c.CaptureLead(lead=ADA, source="web", occurred_at=T0))
        app.handle(c.OpenDeal(deal="D-1", lead=ADA, amount="100", fast_track=True, occurred_at=T0))
    with StoreDb(settings.store) as db:
        for column in ("id_scheme", "key_check"):
            db.execute(f"ALTER TABLE {{t}} DROP COLUMN {column}", t=TABLE)


def test_a_store_from_before_keyed_ids_keeps_its_uuid5_ids(store_settings: Settings) -> None:
    _make_it_an_older_store(store_settings)

    with open_application(store_settings) as app:
        assert app.ids.name == Uuid5Ids.name
        lead = app.get_lead(ADA)
        assert lead.id == uuid5(PUBLISHED_NAMESPACE, f"lead:{ADA}")
        assert app.get_deal("D-1").lead_id == lead.id
        app.handle(c.CaptureLead(lead=BOB, source="web", occurred_at=T0))
        app.handle(c.MarkMql(lead=BOB, occurred_at=T0))
        assert app.get_lead(BOB).id == Uuid5Ids().lead(BOB)
    with open_application(store_settings) as again:  # recorded now, as uuid5
        assert again.ids.name == Uuid5Ids.name
        assert again.get_lead(BOB).stage == "mql"


def _make_it_a_keyed_store(settings: Settings) -> None:
    """A store created with keyed lead ids (before the index): it records that scheme."""
    with open_application(settings) as app:
        app.ids = keyed_ids(privacy_master_key(settings))
        app.handle(c.CaptureLead(lead=ADA, source="web", occurred_at=T0))
    with StoreDb(settings.store) as db:
        db.execute("UPDATE {t} SET id_scheme = ?", (KeyedIds.name,), t=TABLE)


def test_a_store_created_with_keyed_ids_keeps_them(store_settings: Settings) -> None:
    _make_it_a_keyed_store(store_settings)

    with open_application(store_settings) as app:
        assert app.ids.name == KeyedIds.name
        assert app.get_lead(ADA).id == keyed_ids(privacy_master_key(store_settings)).lead(ADA)
        app.handle(c.CaptureLead(lead=BOB, source="web", occurred_at=T0))
        assert app.get_lead(BOB).id.version == 8


def test_a_keyed_store_whose_record_was_lost_keeps_its_keyed_ids(
    store_settings: Settings,
) -> None:
    _make_it_a_keyed_store(store_settings)
    with StoreDb(store_settings.store) as db:
        db.execute("DROP TABLE {t}", t=TABLE)

    with open_application(store_settings) as app:
        assert app.ids.name == KeyedIds.name
        assert app.exists(app.ids.lead(ADA))


def test_an_indexed_store_whose_record_was_lost_keeps_its_index(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as app:  # a deal first: its id is keyed
        app.handle(c.OpenDeal(deal="D-1", amount="100", occurred_at=T0))
        app.handle(c.CaptureLead(lead=ADA, source="web", occurred_at=T0))
        ada = app.get_lead(ADA).id
    with StoreDb(store_settings.store) as db:
        db.execute("DROP TABLE {t}", t=TABLE)

    with open_application(store_settings) as app:
        assert app.ids.name == IndexedIds.name
        assert app.get_lead(ADA).id == ada


def test_an_empty_store_of_an_older_leadflow_gets_indexed_ids(store_settings: Settings) -> None:
    open_application(store_settings).close()
    with StoreDb(store_settings.store) as db:
        for column in ("id_scheme", "key_check"):
            db.execute(f"ALTER TABLE {{t}} DROP COLUMN {column}", t=TABLE)

    _capture(store_settings)
    with open_application(store_settings) as app:
        assert app.ids.name == IndexedIds.name
        assert app.get_lead(ADA).id.version == 4


def test_sqlite_connections_overwrite_deleted_content(tmp_path: Path) -> None:
    settings = settings_with(data_dir=tmp_path)
    with open_application(settings) as app:
        recorder = app.recorder
        with recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute("PRAGMA secure_delete")
            assert cursor.fetchone()[0] == 1
    with StoreDb(settings.store) as db:
        assert db.execute("PRAGMA secure_delete") == [(1,)]
    with open_read_model(settings) as read_model, read_model.read() as tx:
        assert [tuple(row) for row in tx.execute("PRAGMA secure_delete")] == [(1,)]
