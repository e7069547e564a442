"""Integrity settings recorded in the event store (SQLite and PostgreSQL): a start with a
different key, no key, a key on a plain store or compression flipped is refused before
anything is written; a store that predates the record has it inferred from its first
event."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.event_store import StoreSettingsError, key_fingerprint
from adapters.settings import Settings
from adapters.store_db import StoreDb
from adapters.store_integrity import TABLE, IntegritySettings
from domain.commands import CaptureLead
from leadflow.bootstrap import open_application

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()
FP = key_fingerprint(base64.b64decode(KEY))
OTHER_FP = key_fingerprint(base64.b64decode(OTHER_KEY))

PLAIN: dict[str, Any] = {}
ENCRYPTED: dict[str, Any] = {"cipher_key": SecretStr(KEY)}
COMPRESSED: dict[str, Any] = {"compress_events": True}
BOTH: dict[str, Any] = {"cipher_key": SecretStr(KEY), "compress_events": True}

MISMATCHES = [
    pytest.param(
        ENCRYPTED,
        {"cipher_key": SecretStr(OTHER_KEY)},
        f"is encrypted with key fingerprint {FP}; this key's fingerprint is {OTHER_FP}",
        id="other-key",
    ),
    pytest.param(ENCRYPTED, PLAIN, "LEADFLOW_CIPHER_KEY is not set", id="no-key"),
    pytest.param(
        PLAIN, ENCRYPTED, "is not encrypted; LEADFLOW_CIPHER_KEY is set", id="key-on-plain"
    ),
    pytest.param(PLAIN, COMPRESSED, "are not compressed; the setting says true", id="compress"),
    pytest.param(BOTH, ENCRYPTED, "are compressed; the setting says false", id="decompress"),
]


def _capture(settings: Settings, lead: str) -> None:
    app = open_application(settings)
    try:
        app.handle(CaptureLead(lead=lead, source="web", occurred_at=datetime.now(UTC)))
    finally:
        app.close()


def _events_table(db: StoreDb) -> str:
    return "stored_events" if db.dialect == "sqlite" else "leadflow_events"


def _rows(settings: Settings) -> tuple[int, list[tuple[Any, ...]]]:
    """Stored events and the integrity record, read without the application."""
    with StoreDb(settings.store) as db:
        events = db.execute("SELECT COUNT(*) FROM {t}", t=_events_table(db))[0][0]
        recorded = db.execute("SELECT * FROM {t}", t=TABLE)
    return int(events), recorded


def _drop_record(settings: Settings) -> None:
    with StoreDb(settings.store) as db:
        db.execute("DROP TABLE {t}", t=TABLE)


@pytest.mark.parametrize(("first", "then", "message"), MISMATCHES)
def test_a_start_with_other_settings_is_refused_and_writes_nothing(
    store_settings: Settings, first: dict[str, Any], then: dict[str, Any], message: str
) -> None:
    _capture(store_settings.with_store(**first), "ada@example.com")
    before = _rows(store_settings)
    with pytest.raises(StoreSettingsError) as refused:
        _capture(store_settings.with_store(**then), "bob@example.com")
    text = str(refused.value)
    assert "\n" not in text
    assert message in text
    assert text.startswith(("LEADFLOW_CIPHER_KEY: ", "LEADFLOW_COMPRESS_EVENTS: "))
    assert KEY not in text and OTHER_KEY not in text
    assert _rows(store_settings) == before


@pytest.mark.parametrize(("first", "then", "message"), MISMATCHES)
def test_a_store_without_the_record_is_checked_against_its_first_event(
    store_settings: Settings, first: dict[str, Any], then: dict[str, Any], message: str
) -> None:
    _capture(store_settings.with_store(**first), "ada@example.com")
    _drop_record(store_settings)
    with pytest.raises(StoreSettingsError) as refused:
        _capture(store_settings.with_store(**then), "bob@example.com")
    name = "LEADFLOW_COMPRESS_EVENTS" if "compress" in message else "LEADFLOW_CIPHER_KEY"
    assert str(refused.value).startswith(f"{name}: ")
    with StoreDb(store_settings.store) as db:
        assert db.execute("SELECT COUNT(*) FROM {t}", t=_events_table(db))[0][0] == 2


@pytest.mark.parametrize("settings", [PLAIN, ENCRYPTED, COMPRESSED, BOTH])
def test_the_first_start_records_the_settings_and_later_starts_agree(
    store_settings: Settings, settings: dict[str, Any]
) -> None:
    configured = store_settings.with_store(**settings)
    _capture(configured, "ada@example.com")
    _capture(configured, "bob@example.com")
    _, recorded = _rows(store_settings)
    assert len(recorded) == 1
    _, encrypted, fingerprint, compressed, audit_key_id, *_ = recorded[0]
    expected = IntegritySettings(
        encrypted="cipher_key" in settings,
        key_fingerprint=FP if "cipher_key" in settings else None,
        compressed=bool(settings.get("compress_events")),
    )
    assert IntegritySettings(bool(encrypted), fingerprint, bool(compressed), audit_key_id) == (
        expected
    )


def test_an_older_store_with_matching_settings_is_recorded(store_settings: Settings) -> None:
    configured = store_settings.with_store(**BOTH)
    _capture(configured, "ada@example.com")
    _drop_record(store_settings)
    _capture(configured, "bob@example.com")
    events, recorded = _rows(store_settings)
    assert events == 4
    assert [row[1:4] for row in recorded] in ([(1, FP, 1)], [(True, FP, True)])


@pytest.mark.parametrize(
    ("then", "refusal"),
    [
        (PLAIN, None),
        (ENCRYPTED, "LEADFLOW_CIPHER_KEY: "),
        (COMPRESSED, "LEADFLOW_COMPRESS_EVENTS: "),
    ],
)
def test_a_damaged_first_event_does_not_mislead_the_inference(
    store_settings: Settings, then: dict[str, Any], refusal: str | None
) -> None:
    _capture(store_settings, "ada@example.com")
    _drop_record(store_settings)
    with StoreDb(store_settings.store) as db:
        db.execute(
            "UPDATE {t} SET state = ? WHERE originator_version = 1",
            (b"\x00damaged",),
            t=_events_table(db),
        )
    if refusal is None:
        _capture(store_settings.with_store(**then), "bob@example.com")
        assert _rows(store_settings)[0] == 4
        return
    with pytest.raises(StoreSettingsError, match=f"^{refusal}"):
        _capture(store_settings.with_store(**then), "bob@example.com")
    with StoreDb(store_settings.store) as db:
        assert db.execute("SELECT COUNT(*) FROM {t}", t=_events_table(db))[0][0] == 2
