"""Forgetting a lead while commands for it keep arriving (two applications, as two
processes would be; SQLite and PostgreSQL): every command is applied before the erasure or
refused after it, nothing is recorded on the lead after ``LeadErased``, and another lead
loses nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from adapters.settings import Settings
from domain import commands as c
from domain.errors import ErasedLead
from domain.events import ContactLogged, LeadErased
from domain.personal_fields import ERASED_TEXT
from leadflow.bootstrap import forget_lead, open_application

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_MAX_COMMANDS = 2000  # the writer stops after three refusals, long before
_PAUSE = 0.002
ADA, BOB = "ada@example.com", "bob@example.com"


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

    def contacts() -> None:
        with open_application(store_settings) as writer:
            for n in range(_MAX_COMMANDS):
                command = c.LogContact(
                    lead=ADA, channel="call", outcome=f"call {n}", occurred_at=T0
                )
                try:
                    writer.handle(command)
                    outcomes.append("applied")
                    first_applied.set()
                    time.sleep(_PAUSE)  # a busy lead, not a hot loop that starves the forget
                except ErasedLead:
                    outcomes.append("erased")
                    if outcomes.count("erased") == 3:
                        return

    thread = threading.Thread(target=contacts)
    thread.start()
    first_applied.wait(timeout=60)
    erasure = forget_lead(store_settings, ADA, "request 7", "dpo")
    thread.join()

    applied = outcomes.count("applied")
    assert 0 < applied < _MAX_COMMANDS, outcomes
    assert outcomes == ["applied"] * applied + ["erased"] * 3
    with open_application(store_settings) as app:
        events = app.events_of(erasure.lead_id)
        assert isinstance(events[-1], LeadErased)
        contacts_logged = [e for e in events if isinstance(e, ContactLogged)]
        assert len(contacts_logged) == applied
        assert {e.outcome for e in contacts_logged} == {ERASED_TEXT}
        assert app.verify_chain(erasure.lead_id).ok
        bob = app.get_lead(BOB)
        assert bob.external_id == BOB and bob.attributes == {"name": BOB}
