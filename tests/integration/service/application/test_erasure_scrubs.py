"""What ``forget`` overwrites beside the events (SQLite and PostgreSQL): the fingerprints
of the command ledger's rows for the lead (a guessed email could be confirmed against
them), the ingest's records that quote the person (a dead-letter reason may), and the
payload of the read model's dead letters of the lead's events."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.command_ledger import ERASED_FINGERPRINT
from adapters.command_ledger import TABLE as LEDGER_TABLE
from adapters.settings import Settings
from consumers.ingest.ledger import TABLE as INGEST_RECORDS
from consumers.ingest.ledger import IngestLedger, LedgerEntry
from domain import commands as c
from domain.personal_fields import ERASED_TEXT
from leadflow.bootstrap import forget_lead, open_application, open_read_model, open_store_db
from projections.schema import DEAD_LETTERS

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADA = "ada.lovelace@example.com"


def test_forget_overwrites_fingerprints_ingest_records_and_dead_letters(
    store_settings: Settings,
) -> None:
    capture = c.CaptureLead(lead=ADA, source="web", command_id="crm-1", occurred_at=T0)
    with open_application(store_settings) as app:
        lead_id = app.handle(capture).aggregate_ids[0]
    with open_store_db(store_settings) as db:
        IngestLedger(db).record(
            [
                LedgerEntry("g", "t", 0, 1, "dead_lettered", "x", "invalid", f"{ADA}: bad kind"),
                LedgerEntry("g", "t", 0, 2, "accepted", f"{ADA}-click-1"),
                LedgerEntry("g", "t", 0, 3, "accepted", "someone-else-click-1"),
            ]
        )
    read_model = open_read_model(store_settings)
    try:
        read_model.write(
            lambda tx: tx.insert(
                DEAD_LETTERS, [("embedded", 0, 7, str(lead_id), "data", f'{{"e": "{ADA}"}}', "t")]
            )
        )
    finally:
        read_model.close()

    erasure = forget_lead(store_settings, ADA, "art. 17 request", "dpo")

    assert erasure.ingest_records_scrubbed == 2
    with open_store_db(store_settings) as db:
        fingerprints = db.execute("SELECT fingerprint FROM {t}", t=LEDGER_TABLE)
        records = db.execute(
            "SELECT kafka_offset, event_id, reason FROM {t} ORDER BY kafka_offset",
            t=INGEST_RECORDS,
        )
    assert [bytes(f) for (f,) in fingerprints] == [ERASED_FINGERPRINT]
    assert records == [
        (1, "x", ERASED_TEXT),
        (2, ERASED_TEXT, None),
        (3, "someone-else-click-1", None),
    ]
    read_model = open_read_model(store_settings)
    try:
        with read_model.read() as tx:
            payloads = tx.execute(f"SELECT payload FROM {DEAD_LETTERS.name}")
    finally:
        read_model.close()
    assert [tuple(p) for p in payloads] == [(ERASED_TEXT,)]
    with open_application(store_settings) as app:  # the retry of an erased lead's command
        replayed = app.handle(capture)
    assert replayed.replayed and replayed.status == "duplicate"
