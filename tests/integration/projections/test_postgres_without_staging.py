"""A PostgreSQL read model whose role may not create temporary tables goes without its
COPY staging tables (``unnest`` for every batch) and writes exactly the facts of one
that has them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import structlog
from psycopg import sql
from psycopg.conninfo import make_conninfo
from structlog.testing import capture_logs

from deploy.postgres.server import PostgresServer
from projections.catch_up import catch_up
from projections.compare import compare_stores
from projections.schema import DEAD_LETTERS
from projections.store import PostgresStore
from tests.integration.projections.conftest import Scenario

pytestmark = pytest.mark.postgres


@contextmanager
def database_without_temporary(server: PostgresServer, dsn: str) -> Iterator[str]:
    """A DSN of a new role on a new database where nobody but its owner (the superuser)
    may create temporary tables; both dropped afterwards."""
    name = f"notemp_{uuid.uuid4().hex[:10]}"
    role, database = sql.Identifier(name), sql.Identifier(name)
    with psycopg.connect(server.admin_conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(name)))
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(database))
            admin.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
            admin.execute(
                sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(database, role)
            )
            yield make_conninfo(dsn, user=name, password=name, dbname=name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def test_a_role_without_temporary_writes_the_same_read_model(
    postgres_server: PostgresServer | None, postgres_dsn: str, scenario: Scenario
) -> None:
    if postgres_server is None:
        pytest.skip("needs the superuser of a server this session started (DSN given)")
    model = scenario.app.stage_model
    with database_without_temporary(postgres_server, postgres_dsn) as limited_dsn:
        structlog.reset_defaults()  # a level filter another test configured would hide it
        with capture_logs() as logs:
            limited = PostgresStore(limited_dsn, "rm", model)
        staged = PostgresStore(postgres_dsn, f"t_{uuid.uuid4().hex[:12]}", model)
        with limited, staged:
            assert [e for e in logs if e["event"] == "read_model_without_staging_tables"]
            assert limited._staging is False and staged._staging is True
            catch_up(scenario.app, limited)
            catch_up(scenario.app, staged)
            assert limited.last_notification_id() == scenario.events > 0
            assert compare_stores(limited, staged) == []
            assert limited.rows(DEAD_LETTERS) == staged.rows(DEAD_LETTERS) == []
