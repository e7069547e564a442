"""Property: any sequence of captures and forgets of a few emails, through two
applications on one store (each with its own cache), keeps one live lead per captured
email, never linked to an erased one (SQLite)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.lead_index import TABLE
from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from domain.errors import UnknownAggregate
from leadflow.bootstrap import forget_lead_in, open_application
from service.application import LeadflowApp
from tests.settings_helpers import settings_with

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EMAILS = ("ada@example.com", "bob@example.com", "cy@example.com")
steps = st.lists(
    st.tuples(st.sampled_from(["capture", "forget"]), st.sampled_from(EMAILS), st.integers(0, 1)),
    min_size=1,
    max_size=10,
)


class _Model:
    def __init__(self) -> None:
        self.live: dict[str, UUID] = {}
        self.erased: set[UUID] = set()

    def captured(self, email: str, lead_id: UUID) -> None:
        if email in self.live:
            assert lead_id == self.live[email]
            return
        assert lead_id not in self.erased | set(self.live.values())
        self.live[email] = lead_id


def _step(app: LeadflowApp, store: Settings, model: _Model, op: str, email: str) -> None:
    if op == "capture":
        outcome = app.handle(c.CaptureLead(lead=email, source="web", occurred_at=T0))
        model.captured(email, outcome.aggregate_ids[0])
    elif email in model.live:
        erasure = forget_lead_in(app, store, email, "request", "dpo")
        assert erasure.lead_id == model.live[email] and erasure.unlinked
        model.erased.add(model.live.pop(email))
    else:
        try:
            forget_lead_in(app, store, email, "request", "dpo")
        except UnknownAggregate:
            return
        raise AssertionError(f"{email} is not live, yet forget found a lead")


def _check(apps: list[LeadflowApp], store: Settings, model: _Model) -> None:
    for app in apps:
        for email in EMAILS:
            try:
                found: UUID | None = app.get_lead(email).id
            except UnknownAggregate:
                found = None
            assert found == model.live.get(email)
    with StoreDb(store.store) as db:
        indexed = {UUID(i) for (i,) in db.execute("SELECT lead_id FROM {t}", t=TABLE)}
    assert indexed == set(model.live.values())


@settings(max_examples=10, deadline=None)
@given(steps)
def test_captures_and_forgets_keep_one_live_lead_per_email_unlinked_from_erased_ones(
    ops: list[tuple[str, str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        store = settings_with(data_dir=Path(data_dir))
        apps = [open_application(store), open_application(store)]
        model = _Model()
        try:
            for op, email, which in ops:
                _step(apps[which], store, model, op, email)
            _check(apps, store, model)
        finally:
            for app in apps:
                app.close()
