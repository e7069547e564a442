"""Forgetting a lead while commands for it keep arriving (two applications, as two
processes would be; SQLite and PostgreSQL): every command is applied before the erasure or
refused after it, nothing is recorded on the lead after ``LeadErased``, and another lead
loses nothing."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime

from adapters.settings import Settings
from domain import commands as c
from domain.errors import ErasedLead, UnknownAggregate
from domain.events import ContactLogged, LeadErased
from domain.personal_fields import ERASED_TEXT
from leadflow.bootstrap import forget_lead, open_application

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADA, BOB = "ada@example.com", "bob@example.com"
# commands keep arriving, a little apart: a writer looping flat out on one lead can make
# the forget give up after its retries (ConcurrencyConflict; see the status file)
_PACE = 0.005


def test_commands_racing_a_forget_are_applied_before_it_or_refused_after(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as app:
        for ref in (ADA, BOB):
            app.handle(
                c.CaptureLead(lead=ref, source="web", attributes={"name": ref}, occurred_at=T0)
            )
    outcomes: list[str] = []
    first_applied = threading.Event()
    forgotten = threading.Event()

    def contacts() -> None:
        """Commands until three were sent after the forget returned."""
        with open_application(store_settings) as writer:
            after = 0
            for n in itertools.count():
                after += forgotten.is_set()
                if after > 3:
                    return
                command = c.LogContact(
                    lead=ADA, channel="call", outcome=f"call {n}", occurred_at=T0
                )
                try:
                    writer.handle(command)
                    outcomes.append("applied")
                    first_applied.set()
                except (ErasedLead, UnknownAggregate):  # erased, then its email unlinked
                    outcomes.append("erased")
                time.sleep(_PACE)

    thread = threading.Thread(target=contacts)
    thread.start()
    first_applied.wait()
    erasure = forget_lead(store_settings, ADA, "request 7", "dpo")
    forgotten.set()
    thread.join()

    applied = outcomes.count("applied")
    assert applied > 0 and outcomes[-3:] == ["erased"] * 3
    assert outcomes == ["applied"] * applied + ["erased"] * (len(outcomes) - applied)
    with open_application(store_settings) as app:
        events = app.events_of(erasure.lead_id)
        assert isinstance(events[-1], LeadErased)
        contacts_logged = [e for e in events if isinstance(e, ContactLogged)]
        assert len(contacts_logged) == applied
        assert {e.outcome for e in contacts_logged} == {ERASED_TEXT}
        assert app.verify_chain(erasure.lead_id).ok
        bob = app.get_lead(BOB)
        assert bob.external_id == BOB and bob.attributes == {"name": BOB}
