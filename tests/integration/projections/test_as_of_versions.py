"""As-of from the business-time versions equals the replay of history (the definition)
for funnel, KPIs, stalled and the board, on random histories: out-of-order business times
(late activity, activity before capture), recycles, reopens, fast-tracks, deals won, lost
and reopened, erasures, refused commands, moments on and next to event times; SQLite and
PostgreSQL live read models, caught up in batches of any size."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.personal_seal import PersonalSeal
from domain import commands as c
from domain.errors import UnknownAggregate
from leadflow.bootstrap import open_application
from projections.catch_up import catch_up, notification_batches
from projections.compare import compare_stores
from projections.reports import (
    FunnelFilters,
    funnel_report,
    kpi_report,
    pipeline_positions,
    stalled_report,
)
from projections.reports.as_of import past_read_model, read_model_as_of
from projections.schema import DEAL_VERSIONS, LEAD_VERSIONS, META, VERSIONS_META_KEY
from projections.store import ReadModelStore, SqliteStore, open_scratch_store
from service.application import LeadflowApp
from tests.integration.projections.conftest import Scenario
from tests.integration.projections.helpers import embedded_settings, new_read_model
from tests.integration.projections.scenario import START, generate_commands

FILTERS = (FunnelFilters(), FunnelFilters(source="web"), FunnelFilters(segment="smb"))
MICRO = timedelta(microseconds=1)


def reports(store: ReadModelStore, at: datetime) -> dict[str, Any]:
    return {
        "funnel": [funnel_report(store, f).model_dump(mode="json") for f in FILTERS],
        "kpis": kpi_report(store).model_dump(mode="json"),
        "stalled": stalled_report(store, at).model_dump(mode="json"),
        "board": [
            p.model_dump(mode="json") for p in pipeline_positions(store, limit=10_000, now=at)
        ],
    }


def assert_same_as_replay(app: LeadflowApp, live: ReadModelStore, at: datetime) -> None:
    with read_model_as_of(app, at) as replayed, past_read_model(app, at, live) as versioned:
        assert reports(versioned, at) == reports(replayed, at), at


# --- random histories -----------------------------------------------------------------


def shuffled_history(seed: int, leads: int, late: int) -> list[c.Command]:
    """The scenario generator's commands, plus ``late`` pieces of late activity (some
    before the lead was captured, some re-captures changing its size), in an order that
    keeps each aggregate's lifecycle in business time but mixes aggregates."""
    rng = random.Random(seed)
    commands = generate_commands(seed=seed, leads=leads, direct_deals=2)
    names = sorted({x.lead for x in commands if isinstance(x, c.LeadCommand)})
    extra: list[c.Command] = []
    for number in range(late):
        lead = rng.choice(names)
        at = START + timedelta(days=rng.uniform(-5, 120))
        kind = rng.random()
        if kind < 0.45:
            extra.append(
                c.RecordEngagement(
                    lead=lead, event_id=f"late-{seed}-{number}", kind="page_view", occurred_at=at
                )
            )
        elif kind < 0.8:
            extra.append(c.LogContact(lead=lead, channel="email", occurred_at=at))
        elif kind < 0.93:
            attributes = {"employees": rng.choice((5, 300, 5000))}
            extra.append(
                c.CaptureLead(lead=lead, source="web", attributes=attributes, occurred_at=at)
            )
        else:
            extra.append(c.ForgetLead(lead=lead, reason="asked", occurred_at=at))
    rng.shuffle(extra)
    merged = list(commands)
    for command in extra:
        merged.insert(rng.randrange(len(merged) + 1), command)
    return merged


def moments(app: LeadflowApp, rng: random.Random, count: int) -> list[datetime]:
    """Event times, a microsecond either side of them, random times, and the extremes."""
    times = sorted(
        {
            item.envelope.event.occurred_at
            for items in notification_batches(app, 0)
            for item in items
            if item.envelope is not None
        }
    )
    picked = [START - timedelta(days=30), datetime(2100, 1, 1, tzinfo=UTC)]
    for _ in range(count):
        picked.append(rng.choice(times) + rng.choice((-MICRO, timedelta(0), MICRO)))
        picked.append(START + timedelta(days=rng.uniform(-3, 130)))
    return picked


def destroy_key(app: LeadflowApp, lead: str) -> None:
    """The lead's data key destroyed, so that its events read as erased from then on,
    before and after its ``LeadErased`` (what ``leadflow forget`` does after recording it)."""
    seal = app.personal_data
    assert isinstance(seal, PersonalSeal)
    try:
        found = app.get_lead(lead)
    except UnknownAggregate:
        return  # the ForgetLead was refused: not captured yet
    if found.erased_at is not None:
        seal.keys.destroy(found.id)


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, int, int, int]:
    return (
        draw(st.integers(0, 10_000)),
        draw(st.integers(2, 14)),
        draw(st.integers(0, 12)),
        draw(st.sampled_from((1, 3, 17, 1000))),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories())
def test_versions_equal_the_replay(
    request: pytest.FixtureRequest, store_kind: str, history: tuple[int, int, int, int]
) -> None:
    seed, leads, late, batch = history
    with tempfile.TemporaryDirectory(prefix="asof-") as directory:
        app = open_application(embedded_settings(Path(directory)))
        try:
            for command in shuffled_history(seed, leads, late):
                app.handle_many([command])  # refusals (going back in business time) are fine
                if isinstance(command, c.ForgetLead):
                    destroy_key(app, command.lead)  # as leadflow forget does
            live = new_read_model(request, store_kind, Path(directory), app.stage_model)
            with live:
                catch_up(app, live, batch_size=batch)
                assert live.keeps_versions()
                with open_scratch_store(app.stage_model) as rebuilt:
                    catch_up(app, rebuilt)
                    assert compare_stores(live, rebuilt) == []
                for at in moments(app, random.Random(seed), 4):
                    assert_same_as_replay(app, live, at)
        finally:
            app.close()


# --- the generated scenario and an older read model ----------------------------------


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], scope="module"
)
def scenario_live(
    request: pytest.FixtureRequest, scenario: Scenario, tmp_path_factory: Any
) -> Iterator[ReadModelStore]:
    store = new_read_model(
        request, request.param, tmp_path_factory.mktemp("rm"), scenario.app.stage_model
    )
    catch_up(scenario.app, store, batch_size=97)
    yield store
    store.close()


def test_scenario_months_equal_the_replay(
    scenario: Scenario, scenario_live: ReadModelStore
) -> None:
    for month in range(1, 6):
        assert_same_as_replay(scenario.app, scenario_live, datetime(2026, month, 15, tzinfo=UTC))


def test_read_model_without_versions_replays(scenario: Scenario, tmp_path: Path) -> None:
    """A read model created before the versions existed has no marker: the as-of replays
    (and ``verify`` leaves the empty version tables alone) until a rebuild."""
    live = SqliteStore(tmp_path / "old.sqlite3", scenario.app.stage_model)
    with live:
        catch_up(scenario.app, live)
        live.write(
            lambda tx: tx.execute(f"DELETE FROM {META.name} WHERE key = ?", (VERSIONS_META_KEY,))
        )
        live.write(lambda tx: tx.execute("DELETE FROM rm_lead_versions"))
        assert not live.keeps_versions()
        assert_same_as_replay(scenario.app, live, datetime(2026, 3, 1, tzinfo=UTC))
        with open_scratch_store(scenario.app.stage_model) as rebuilt:
            catch_up(scenario.app, rebuilt)
            assert compare_stores(live, rebuilt) == []
        live.reset()
        assert live.keeps_versions()


def test_versions_hold_no_personal_column() -> None:
    """Erasure sets the personal columns of ``rm_leads`` / ``rm_deals``; the versions have
    none to miss (an as-of takes the external id from the live rows)."""
    personal = {"external_id", "lost_reason", "competitor"}
    assert not personal & {*LEAD_VERSIONS.column_names, *DEAL_VERSIONS.column_names}
