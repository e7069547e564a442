"""A rebuild (batches, only the personal fields the read models store opened, keys read
ahead a batch at a time) writes exactly the read model that applying the events one
by one, every personal field opened, writes: random histories with erasures (keys
destroyed), re-captures, late activity and deals; SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.event_envelope import envelope_from_notification
from adapters.mapper import PydanticMapper
from adapters.personal_seal import PersonalSeal
from domain import commands as c
from leadflow.bootstrap import open_application
from projections.catch_up import DEFAULT_BATCH, catch_up
from projections.compare import compare_stores
from projections.projector import Item, Projector
from projections.schema import DEAD_LETTERS
from projections.store import EMBEDDED_STREAM, ReadModelStore
from service.application import LeadflowApp
from tests.integration.projections.helpers import embedded_settings, new_read_model
from tests.integration.projections.test_as_of_versions import destroy_key, shuffled_history


def one_by_one(app: LeadflowApp, store: ReadModelStore) -> None:
    """Every stored event decoded with every personal field opened, applied alone."""
    mapper = cast(PydanticMapper, app.mapper)
    projector = Projector(store)
    for notification in app.recorder.select_notifications(start=1, limit=1_000_000):
        item = Item(0, notification.id, envelope_from_notification(mapper, notification))
        projector.apply_batch(EMBEDDED_STREAM, [item], {0: notification.id + 1})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    leads=st.integers(2, 12),
    late=st.integers(0, 10),
    batch=st.sampled_from((7, DEFAULT_BATCH)),
)
def test_rebuild_equals_one_by_one(
    request: pytest.FixtureRequest, store_kind: str, seed: int, leads: int, late: int, batch: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="rebuild-") as directory:
        app = open_application(embedded_settings(Path(directory)))
        try:
            for command in shuffled_history(seed, leads, late):
                app.handle_many([command])  # refusals (going back in business time) are fine
                if isinstance(command, c.ForgetLead):
                    destroy_key(app, command.lead)
            model, seal = app.stage_model, app.personal_data
            assert isinstance(seal, PersonalSeal)
            (Path(directory) / "a").mkdir()
            (Path(directory) / "b").mkdir()
            rebuilt = new_read_model(request, store_kind, Path(directory) / "a", model)
            alone = new_read_model(request, store_kind, Path(directory) / "b", model)
            with rebuilt, alone:
                seal.keys.forget_cached()  # the rebuild reads the keys ahead itself
                catch_up(app, rebuilt, batch_size=batch)
                one_by_one(app, alone)
                assert compare_stores(rebuilt, alone) == []
                assert rebuilt.rows(DEAD_LETTERS) == alone.rows(DEAD_LETTERS) == []
                assert rebuilt.last_notification_id() == alone.last_notification_id() > 0
        finally:
            app.close()
