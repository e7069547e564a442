"""The keyed lead index (``service.indexed_ids``, ``adapters.lead_index``) on SQLite and
PostgreSQL: random lead ids, look-ups that write nothing, one query per batch, captures
racing from several applications, and forget unlinking the email (also for another
process's cache)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest

from adapters.lead_index import TABLE, StoredLeadIndex
from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from domain.errors import UnknownAggregate
from leadflow.bootstrap import forget_lead_in, open_application, privacy_master_key
from service.application import LeadflowApp
from service.indexed_ids import LEAD_INDEX_KEY_LABEL, IndexedIds
from service.lead_history import lead_history

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADA = "ada@example.com"


def _index_rows(settings: Settings) -> list[tuple[bytes, UUID]]:
    with StoreDb(settings.store) as db:
        return [(bytes(m), UUID(i)) for m, i in db.execute("SELECT * FROM {t}", t=TABLE)]


def _capture(app: LeadflowApp, ref: str = ADA) -> UUID:
    outcome = app.handle(c.CaptureLead(lead=ref, source="web", occurred_at=T0))
    return outcome.aggregate_ids[0]


def _forget(app: LeadflowApp, settings: Settings, ref: str = ADA) -> None:
    forget_lead_in(app, settings, ref, "request 1", "dpo")


class _CountingIndex(StoredLeadIndex):
    """The real index, counting the calls that reach it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.store)
        self.finds = self.claims = 0

    def find(self, macs: Sequence[bytes]) -> dict[bytes, UUID]:
        self.finds += 1
        return super().find(macs)

    def claim(self, rows: Sequence[tuple[bytes, UUID]]) -> None:
        self.claims += 1
        super().claim(rows)


def test_a_captured_lead_gets_a_random_id_that_its_email_finds_in_any_case(
    app: LeadflowApp, store_settings: Settings
) -> None:
    lead_id = _capture(app)
    again = _capture(app, "  ADA@Example.com ")

    assert lead_id.version == 4 and again == lead_id
    assert app.get_lead("Ada@example.com").id == lead_id
    assert [i for _, i in _index_rows(store_settings)] == [lead_id]


def test_looking_up_unknown_emails_writes_nothing(
    app: LeadflowApp, store_settings: Settings
) -> None:
    _capture(app)
    for number in range(5):
        with pytest.raises(UnknownAggregate):
            app.get_lead(f"nobody-{number}@example.com")
    refused = app.handle_many([c.MarkMql(lead="nobody@example.com", occurred_at=T0)])

    assert isinstance(refused[0], UnknownAggregate)
    assert len(_index_rows(store_settings)) == 1


def test_a_batch_looks_its_leads_up_and_allocates_its_captures_in_one_query_each(
    app: LeadflowApp, store_settings: Settings
) -> None:
    _capture(app, "known@example.com")
    counting = _CountingIndex(store_settings)
    master = privacy_master_key(store_settings)
    app.ids = IndexedIds(master.derive(LEAD_INDEX_KEY_LABEL), counting, app.ids.deal)
    commands: list[c.Command] = [
        c.MarkMql(lead="known@example.com", occurred_at=T0),
        *(
            c.CaptureLead(lead=f"new-{n}@example.com", source="web", occurred_at=T0)
            for n in range(5)
        ),
        *(c.MarkMql(lead=f"new-{n}@example.com", occurred_at=T0) for n in range(5)),
        c.MarkMql(lead="nobody@example.com", occurred_at=T0),
    ]

    results = app.handle_many(commands)

    assert counting.claims == 1  # the five captures: one insert
    assert counting.finds == 1  # every lead of the batch, the claimed ones too
    assert [type(r).__name__ for r in results].count("UnknownAggregate") == 1
    assert app.get_lead("new-3@example.com").stage == "mql"


def test_applications_capturing_the_same_email_at_once_get_one_lead(
    store_settings: Settings,
) -> None:
    apps = [open_application(store_settings) for _ in range(4)]
    start = threading.Barrier(len(apps))
    ids: list[UUID] = []

    def capture(app: LeadflowApp) -> None:
        start.wait()
        ids.append(_capture(app))

    threads = [threading.Thread(target=capture, args=(app,)) for app in apps]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for app in apps:
            app.close()

    assert len(ids) == 4 and len(set(ids)) == 1
    assert [i for _, i in _index_rows(store_settings)] == ids[:1]


def test_forget_unlinks_the_email_and_a_new_capture_is_a_new_lead(
    app: LeadflowApp, store_settings: Settings
) -> None:
    erased = _capture(app)
    _forget(app, store_settings)

    assert _index_rows(store_settings) == []
    assert not app.exists(app.ids.lead(ADA))
    with pytest.raises(UnknownAggregate):
        app.get_lead(ADA)
    recaptured = _capture(app)
    assert recaptured != erased and recaptured.version == 4
    assert app.get_lead(ADA).id == recaptured
    assert app.get_lead(str(erased)).erased_at is not None  # its own UUID still reaches it
    assert app.verify_chain(erased).ok
    assert [i for _, i in _index_rows(store_settings)] == [recaptured]


def test_another_applications_remembered_id_does_not_outlive_a_forget(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as one, open_application(store_settings) as two:
        erased = _capture(one)
        assert two.get_lead(ADA).id == erased  # now remembered by two
        _forget(one, store_settings)

        with pytest.raises(UnknownAggregate):
            two.get_lead(ADA)
        assert lead_history(two, str(erased)).lead_id == erased


def test_a_remembered_id_of_a_forgotten_lead_does_not_give_its_history_by_email(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as one, open_application(store_settings) as two:
        erased = _capture(one)
        assert lead_history(two, ADA).lead_id == erased  # now remembered by two
        _forget(one, store_settings)

        with pytest.raises(UnknownAggregate):
            lead_history(two, ADA)
        recaptured = _capture(one)
        assert lead_history(two, ADA).lead_id == recaptured
        assert _capture(one) == _capture(two) != erased
        one.handle(c.MarkMql(lead=ADA, occurred_at=T0))
        assert two.get_lead(ADA).stage == "mql"


def test_a_command_through_a_remembered_id_of_a_forgotten_lead_finds_the_new_one(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as one, open_application(store_settings) as two:
        _capture(two)  # remembered by two
        _forget(one, store_settings)
        recaptured = _capture(one)

        outcome = two.handle(c.MarkMql(lead=ADA, occurred_at=T0))
        assert outcome.aggregate_ids == (recaptured,)
        assert one.get_lead(ADA).stage == "mql"
