"""Concurrent writers on the same leads lose no update (optimistic concurrency + retry)."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.settings import Settings
from domain import commands as c
from leadflow.bootstrap import open_application

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LEADS = [f"hot{n}@example.com" for n in range(3)]
PER_WORKER = 15


def _work(settings_json: str, worker: int) -> int:
    app = open_application(Settings.model_validate_json(settings_json))
    applied = 0
    try:
        for n in range(PER_WORKER):
            lead = LEADS[n % len(LEADS)]
            outcome = app.handle(
                c.LogContact(
                    lead=lead,
                    channel="call",
                    outcome=f"w{worker}-{n}",
                    occurred_at=T0 + timedelta(minutes=n),
                    command_id=f"w{worker}-{n}",
                )
            )
            applied += outcome.status == "applied"
    finally:
        app.close()
    return applied


def _prepare(settings: Settings) -> None:
    app = open_application(settings)
    for lead in LEADS:
        app.handle(c.CaptureLead(lead=lead, source="web", occurred_at=T0))
    app.close()


def _contacts(settings: Settings) -> dict[str, set[str]]:
    app = open_application(settings)
    try:
        result: dict[str, set[str]] = {}
        for lead in LEADS:
            events = app.events_of(app.resolve_lead(lead))
            outcomes = [e.outcome for e in events if e.event_type == "ContactLogged"]  # type: ignore[attr-defined]
            assert len(outcomes) == len(set(outcomes))
            result[lead] = set(outcomes)
            assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        return result
    finally:
        app.close()


def _expected(workers: int) -> set[str]:
    return {f"w{w}-{n}" for w in range(workers) for n in range(PER_WORKER)}


def _check(settings: Settings, workers: int, applied: list[int]) -> None:
    assert sum(applied) == workers * PER_WORKER
    contacts = _contacts(settings)
    assert set().union(*contacts.values()) == _expected(workers)


def test_threads_with_their_own_app_lose_no_update(store_settings: Settings) -> None:
    _prepare(store_settings)
    payload = store_settings.model_dump_json()
    payload = _with_secrets(store_settings, payload)
    with ThreadPoolExecutor(max_workers=4) as pool:
        applied = list(pool.map(_work, [payload] * 4, range(4)))
    _check(store_settings, 4, applied)


def test_processes_lose_no_update(store_settings: Settings) -> None:
    _prepare(store_settings)
    payload = _with_secrets(store_settings, store_settings.model_dump_json())
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        applied = list(pool.map(_work, [payload] * 3, range(3)))
    _check(store_settings, 3, applied)


def _with_secrets(settings: Settings, payload: str) -> str:
    """model_dump_json masks secrets; put the DSN back for the workers."""
    data: dict[str, Any] = json.loads(payload)
    store = data["store"]
    if settings.store.dsn is not None:
        store["postgres_dsn"] = settings.store.dsn
    store["data_dir"] = str(settings.store.data_dir)
    # postgres_dsn stays, None too: a worker on SQLite must not take LEADFLOW_POSTGRES_DSN
    data["store"] = {k: v for k, v in store.items() if v is not None or k == "postgres_dsn"}
    data.pop("kafka", None)
    return json.dumps(data)
