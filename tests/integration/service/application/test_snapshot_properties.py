"""Property: an honest snapshot is always proven. Whatever commands a store received
(valid, refused, duplicated), with a snapshot at every version, sealed by an audit key or
not, every snapshot matches its events, and a lead or deal read through its snapshot is
the one its events give. On SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings

from adapters.audit_keys import generate_key_pair
from adapters.settings import Settings
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from service.importer import import_commands
from tests.integration.service.application.test_reimport_properties import (
    DEALS,
    LEADS,
    command_files,
    fresh_store,
)


def _with_audit_key(settings_: Settings, directory: Path) -> Settings:
    key = generate_key_pair(directory / "audit.pem")
    audit = settings_.audit.model_copy(update={"key_file": key.source})
    return settings_.model_copy(update={"audit": audit})


def _stored(app: LeadflowApp) -> list[tuple[str, UUID]]:
    found = [("lead", app.resolve_lead(ref)) for ref in LEADS]
    found += [("deal", app.resolve_deal(ref)) for ref in DEALS]
    return [(kind, ident) for kind, ident in found if app.exists(ident)]


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@pytest.mark.parametrize("sealed", [False, True])
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=command_files())
def test_every_honest_snapshot_is_proven(
    backend: str, sealed: bool, lines: list[str], request: pytest.FixtureRequest
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    with fresh_store(backend, dsn) as base, tempfile.TemporaryDirectory() as keys:
        store = base.with_store(snapshot_interval=1)
        if sealed:
            store = _with_audit_key(store, Path(keys))
        with open_application(store) as app:
            import_commands(lines, app, batch_size=7)
        with (
            open_application(store) as app,
            open_application(store.with_store(snapshot_interval=0)) as replaying,
        ):
            for kind, ident in _stored(app):
                assert app.snapshot_problems(ident) == []
                read = app.get_lead if kind == "lead" else app.get_deal
                replay = replaying.get_lead if kind == "lead" else replaying.get_deal
                assert read(str(ident)) == replay(str(ident))
