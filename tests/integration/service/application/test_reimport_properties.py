"""Property: importing a command file once or twice gives the same read models and the
same refusal reports, on SQLite and PostgreSQL.

The files mix valid lines, lines the domain refuses (out of order, unknown leads or
deals, business time going backwards), exact duplicates, formatting variants of earlier
lines (``Z`` or ``+00:00``, ``"actor": null``, other key order) and explicit command ids.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.settings import Settings
from leadflow.bootstrap import open_application, open_read_model, privacy_master_key
from projections.catch_up import catch_up
from projections.reports.funnel import funnel_report
from projections.reports.kpis import kpi_report
from service.importer import ImportReport, import_commands
from tests.settings_helpers import settings_with

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
LEADS = ["ann@x.com", "bob@x.com", "cy@x.com"]
DEALS = ["D-1", "D-2"]

times = st.integers(min_value=0, max_value=20).map(lambda h: T0 + timedelta(hours=h))
leads = st.sampled_from(LEADS)
deals = st.sampled_from(DEALS)


def _lead_command(name: str, **extra: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"command": st.just(name), "lead": leads, "occurred_at": times, **extra}
    )


commands = st.one_of(
    _lead_command("capture_lead", source=st.sampled_from(["web", "ads"])),
    _lead_command("mark_mql"),
    _lead_command("accept_lead"),
    _lead_command("reject_lead", reason=st.just("no fit")),
    _lead_command("log_contact", channel=st.sampled_from(["call", "email"])),
    st.fixed_dictionaries(
        {
            "command": st.just("open_deal"),
            "deal": deals,
            "lead": leads,
            "amount": st.sampled_from([100, 250.5]),
            "occurred_at": times,
        }
    ),
    st.fixed_dictionaries({"command": st.just("win_deal"), "deal": deals, "occurred_at": times}),
    st.fixed_dictionaries(
        {
            "command": st.just("lose_deal"),
            "deal": deals,
            "reason": st.just("price"),
            "occurred_at": times,
        }
    ),
)


def _written(data: dict[str, Any], variant: int, command_id: str | None) -> str:
    line = dict(data)
    stamp: datetime = line["occurred_at"]
    line["occurred_at"] = (
        stamp.isoformat() if variant % 2 else stamp.isoformat().replace("+00:00", "Z")
    )
    if variant == 2:
        line["actor"] = None
    if command_id is not None:
        line["command_id"] = command_id
    keys = sorted(line, reverse=variant == 3)
    return json.dumps({k: line[k] for k in keys})


@st.composite
def command_files(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    originals: list[tuple[dict[str, Any], str | None]] = []
    for n in range(draw(st.integers(min_value=1, max_value=25))):
        kind = draw(st.sampled_from(["new", "new", "new", "repeat", "variant"]))
        if kind == "new" or not originals:
            data = draw(commands)
            command_id = f"id-{n}" if draw(st.booleans()) and n % 3 == 0 else None
            originals.append((data, command_id))
            lines.append(_written(data, 0, command_id))
        else:
            data, command_id = draw(st.sampled_from(originals))
            variant = 0 if kind == "repeat" else draw(st.integers(min_value=1, max_value=3))
            lines.append(_written(data, variant, command_id))
    return lines


@contextmanager
def fresh_store(
    backend: str, postgres_dsn: str | None, key_from: Settings | None = None
) -> Iterator[Settings]:
    """A new empty store; with the privacy master key of ``key_from``, when given, so its
    deal ids (named in refusals) are those of that store."""
    with tempfile.TemporaryDirectory() as directory:
        if backend == "sqlite":
            fresh = settings_with(data_dir=Path(directory))
        else:
            fresh = settings_with(
                data_dir=Path(directory),
                postgres_dsn=postgres_dsn,
                postgres_schema=f"p_{uuid4().hex[:12]}",
            )
        if key_from is not None:
            key_file = privacy_master_key(key_from).source
            privacy = fresh.privacy.model_copy(update={"master_key_file": key_file})
            fresh = fresh.model_copy(update={"privacy": privacy})
        yield fresh


def imported(settings_: Settings, lines: list[str], times_: int) -> tuple[list[ImportReport], Any]:
    reports = []
    for _ in range(times_):
        with open_application(settings_) as app:
            reports.append(import_commands(lines, app, batch_size=7))
    with open_application(settings_) as app, open_read_model(settings_) as store:
        catch_up(app, store)
        models = {
            "funnel": funnel_report(store).model_dump(mode="json"),
            "kpis": kpi_report(store).model_dump(mode="json"),
            "leads": {
                ref: _business_state(app.get_lead(ref).model_dump(mode="json"))
                for ref in LEADS
                if app.exists(app.resolve_lead(ref))
            },
        }
    return reports, models


def _business_state(state: dict[str, Any]) -> dict[str, Any]:
    wall_clock = {"id", "created_on", "modified_on", "last_hash", "deal_ids"}
    return {k: v for k, v in state.items() if k not in wall_clock}


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _refusals(report: ImportReport) -> list[tuple[int, str]]:
    """Each refusal's line and reason, the UUIDs it names left out (lead ids are random:
    each store gives the same lead its own)."""
    return [(r.line, _UUID.sub("<id>", r.reason)) for r in report.rejections]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=command_files())
def test_importing_once_or_twice_gives_the_same_read_models_and_refusals(
    backend: str, request: pytest.FixtureRequest, lines: list[str]
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    with fresh_store(backend, dsn) as once, fresh_store(backend, dsn, once) as twice:
        (only,), models_once = imported(once, lines, 1)
        (first, second), models_twice = imported(twice, lines, 2)

    assert _refusals(first) == _refusals(only)
    assert _refusals(second) == _refusals(first)
    assert second.applied == 0
    assert second.duplicate == first.applied + first.duplicate
    assert models_twice == models_once
