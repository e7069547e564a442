"""The per-lead data key table (SQLite and PostgreSQL): keys wrapped under the master
key, created once however many writers race, refused under another master key, and
destroyed for good."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.lead_keys import (
    TABLE,
    WRAPPING_KEY_LABEL,
    DataKeyUnreadable,
    LeadKeys,
    MissingDataKey,
)
from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from domain.errors import DomainError
from leadflow.bootstrap import open_application, privacy_master_key

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def keys(store_settings: Settings) -> LeadKeys:
    open_application(store_settings).close()  # creates the store's tables
    return _keys(store_settings)


def _keys(settings: Settings, wrapping: bytes | None = None) -> LeadKeys:
    key = wrapping or privacy_master_key(settings).derive(WRAPPING_KEY_LABEL)
    return LeadKeys(settings.store, key)


def _row(settings: Settings, lead_id: UUID) -> tuple[Any, ...]:
    with StoreDb(settings.store) as db:
        query = "SELECT nonce, wrapped_key, erased_at FROM {t} WHERE lead_id = ?"
        return db.execute(query, (str(lead_id),), t=TABLE)[0]


def test_a_key_is_stored_wrapped_and_unwraps_in_another_process(
    keys: LeadKeys, store_settings: Settings
) -> None:
    lead_id = uuid4()
    key = keys.key_for_new(lead_id)
    assert key is not None and len(key) == 32
    nonce, wrapped, erased_at = _row(store_settings, lead_id)
    assert erased_at is None and len(bytes(nonce)) == 12
    assert key not in bytes(wrapped)
    assert _keys(store_settings).key(lead_id) == key
    assert keys.key_for_new(lead_id) == key


def test_writers_racing_to_create_a_key_all_get_the_one_stored(
    keys: LeadKeys, store_settings: Settings
) -> None:
    lead_id = uuid4()
    writers = [_keys(store_settings) for _ in range(4)]
    barrier = threading.Barrier(len(writers))
    got: list[bytes | None] = []

    def create(writer: LeadKeys) -> None:
        barrier.wait()
        got.append(writer.key_for_new(lead_id))

    threads = [threading.Thread(target=create, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4 and len(set(got)) == 1
    assert keys.key(lead_id) == got[0]


def test_another_master_key_is_refused_naming_the_setting(
    keys: LeadKeys, store_settings: Settings
) -> None:
    lead_id = uuid4()
    keys.key_for_new(lead_id)
    with pytest.raises(DataKeyUnreadable, match="LEADFLOW_PRIVACY_MASTER_KEY_FILE") as error:
        _keys(store_settings, secrets.token_bytes(32)).key(lead_id)
    assert str(lead_id) in str(error.value)


def test_a_destroyed_key_is_gone_for_every_reader(keys: LeadKeys, store_settings: Settings) -> None:
    lead_id = uuid4()
    keys.key_for_new(lead_id)
    other = _keys(store_settings)
    assert other.key(lead_id) is not None

    assert keys.destroy(lead_id) is True
    assert keys.destroy(lead_id) is False
    assert keys.key(lead_id) is None
    assert keys.key_for_new(lead_id) is None  # never created again
    nonce, wrapped, erased_at = _row(store_settings, lead_id)
    assert nonce is None and wrapped is None and erased_at is not None
    assert _keys(store_settings).key(lead_id) is None
    other.forget_cached()
    assert other.key(lead_id) is None


def test_a_batch_prepares_its_keys_in_one_go_and_keeps_what_exists(
    keys: LeadKeys, store_settings: Settings
) -> None:
    existing, destroyed, new = uuid4(), uuid4(), uuid4()
    before = keys.key_for_new(existing)
    keys.key_for_new(destroyed)
    keys.destroy(destroyed)
    other = _keys(store_settings)  # another process, nothing cached
    other.prepare([existing, destroyed, new, new])
    assert other.key(existing) == before
    assert other.key(destroyed) is None
    created = other.key(new)
    assert created is not None and keys.key(new) == created
    other.prepare([new])  # known now: nothing read or written
    assert _keys(store_settings).key(new) == created


def test_a_batch_of_commands_creates_its_new_leads_keys(store_settings: Settings) -> None:
    with open_application(store_settings) as app:
        commands = [
            c.CaptureLead(lead=f"batch-{n}@example.com", source="web", occurred_at=T0)
            for n in range(30)
        ]
        outcomes = app.handle_many(commands)
    with StoreDb(store_settings.store) as db:
        rows = db.execute("SELECT lead_id FROM {t}", t=TABLE)
    created = {o.aggregate_ids[0] for o in outcomes if not isinstance(o, DomainError)}
    assert len(created) == 30
    assert {UUID(str(r[0])) for r in rows} == created


def test_loading_keys_ahead_reads_them_and_creates_none(
    keys: LeadKeys, store_settings: Settings
) -> None:
    """``load`` (a reader about to open many leads' values): the stored keys and the
    destroyed ones come in one go; a lead with no key gets none, and ``key`` still says
    so; a key that does not unwrap is left for ``key`` to refuse."""
    kept, destroyed, unknown = uuid4(), uuid4(), uuid4()
    key = keys.key_for_new(kept)
    keys.key_for_new(destroyed)
    keys.destroy(destroyed)
    reader = _keys(store_settings)
    reader.load([kept, destroyed, unknown])
    with StoreDb(store_settings.store) as db:
        db.execute("DELETE FROM {t} WHERE lead_id = ?", (str(kept),), t=TABLE)
    assert reader.key(kept) == key  # read by load, before the row went
    assert reader.key(destroyed) is None
    with pytest.raises(MissingDataKey):
        reader.key(unknown)  # load created no key for it
    stranger = _keys(store_settings, secrets.token_bytes(32))
    other = uuid4()
    keys.key_for_new(other)
    stranger.load([other])  # does not raise
    with pytest.raises(DataKeyUnreadable):
        stranger.key(other)
