"""Property: reading many aggregates at once (``LeadflowApp.preload``) gives each exactly
as the repository's one-by-one read does. Whatever history a store holds (commands valid,
refused and repeated, engagements, deals, snapshots at any interval, leads forgotten),
every lead and deal preloaded into the cache equals the one read alone from a second
application, the ids preloaded as absent are those that do not exist, and a snapshot
that the reader cannot trust by its seal is left to the repository's proof. On SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain.aggregate import Aggregate, project_aggregate
from domain.errors import UnknownAggregate
from leadflow.bootstrap import forget_lead, open_application
from service.application import LeadflowApp
from service.importer import import_commands
from service.snapshot_proof import ProvenSnapshots
from tests.integration.service.application.test_reimport_properties import (
    DEALS,
    LEADS,
    command_files,
    fresh_store,
)

T0 = datetime(2026, 1, 2, 9, tzinfo=UTC)
_PROJECTOR = cast(Callable[[Any, Iterable[Any]], Any], project_aggregate)  # as load_cached's


def _ids(app: LeadflowApp) -> list[UUID]:
    """Every lead's and deal's id (stored or not) and an id no aggregate has."""
    ids = [app.ids.lead(ref) for ref in LEADS] + [app.ids.deal(ref) for ref in DEALS]
    return [*ids, uuid4()]


def _one_by_one(app: LeadflowApp, aggregate_id: UUID) -> Aggregate | None:
    try:
        aggregate: object = app.repository.get(aggregate_id, projector_func=_PROJECTOR)
    except AggregateNotFoundError:
        return None
    assert isinstance(aggregate, Aggregate)
    return aggregate


def _untrusting(app: LeadflowApp) -> None:
    """The reader holds no seal key: every snapshot must be proven by replay."""
    assert isinstance(app.snapshots, ProvenSnapshots)
    app.snapshots.local_seal = None


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=command_files(),
    interval=st.sampled_from([1, 2, 3, 100]),
    engaged=st.lists(st.sampled_from(LEADS), max_size=6),
    forgotten=st.sets(st.sampled_from(LEADS), max_size=2),
    trust_seal=st.booleans(),
)
def test_a_batch_read_gives_what_one_by_one_reads_give(
    backend: str,
    lines: list[str],
    interval: int,
    engaged: list[str],
    forgotten: set[str],
    trust_seal: bool,
    request: pytest.FixtureRequest,
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    with fresh_store(backend, dsn) as base:
        store = base.with_store(snapshot_interval=interval)
        with open_application(store) as app:
            import_commands(lines, app, batch_size=5)
            engagements = [
                c.RecordEngagement(lead=ref, event_id=f"e-{n}", kind="page_view", occurred_at=T0)
                for n, ref in enumerate(engaged)
            ]
            app.handle_many(engagements)
            ids = _ids(app)  # before forgetting: an erased lead's ref no longer names it
        for ref in sorted(forgotten):
            with suppress(UnknownAggregate):  # a lead the history never captured
                forget_lead(store, ref, "request", "dpo")
        with open_application(store) as batch, open_application(store) as alone:
            if not trust_seal:
                _untrusting(batch)
                _untrusting(alone)
            absent = batch.preload(ids)
            for aggregate_id in ids:
                expected = _one_by_one(alone, aggregate_id)
                assert (aggregate_id in absent) == (expected is None)
                cached = batch.peek_cached(aggregate_id)
                if cached is not None:
                    assert cached == expected
                    assert cached.version == expected.version
                    assert cached.last_hash == expected.last_hash
                elif expected is not None:
                    # left to the repository: only a snapshot proven by replay may be
                    assert not trust_seal
                    assert batch.snapshots is not None
                    assert list(batch.snapshots.recorder.select_events(aggregate_id))
                    assert _one_by_one(batch, aggregate_id) == expected
            assert batch.preload(ids) == absent  # the cached ones are not read again
