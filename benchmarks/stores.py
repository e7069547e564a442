"""Fresh, empty event stores for one measurement: a SQLite file or a PostgreSQL schema.

Every store a benchmark opens is new and is removed afterwards, so runs never see each
other's events. Settings not chosen here (stage model, scoring rules, cipher,
compression, Kafka) come from the ``LEADFLOW_*`` environment through the composition
root, as in every leadflow process.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import psycopg
import structlog
from psycopg import sql

from adapters.settings import Settings
from benchmarks.framework import BenchContext, BenchmarkError, StoreKind
from leadflow.bootstrap import load_settings, open_application
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.benchmarks.stores")


@contextmanager
def fresh_store(
    ctx: BenchContext, kind: StoreKind, label: str, *, snapshot_interval: int = 100
) -> Iterator[Settings]:
    """Settings naming a new, empty store of ``kind``; the store is deleted on exit."""
    tag = f"{label}_{uuid4().hex[:10]}"
    if kind == "sqlite":
        data_dir = ctx.work_dir / tag
        try:
            yield load_settings().with_store(
                data_dir=data_dir, postgres_dsn=None, snapshot_interval=snapshot_interval
            )
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        return
    dsn = postgres_dsn(ctx)
    schema = f"bench_{tag}"
    try:
        yield load_settings().with_store(
            data_dir=ctx.work_dir / tag,
            postgres_dsn=dsn,
            postgres_schema=schema,
            snapshot_interval=snapshot_interval,
        )
    finally:
        _drop_schema(dsn, schema)


def with_snapshot_interval(settings: Settings, interval: int) -> Settings:
    return settings.with_store(snapshot_interval=interval)


@contextmanager
def opened(settings: Settings) -> Iterator[LeadflowApp]:
    """A LeadflowApp on the store, closed on exit."""
    app = open_application(settings, default_actor="benchmark")
    try:
        yield app
    finally:
        app.close()


def postgres_dsn(ctx: BenchContext) -> str:
    if ctx.postgres_dsn is None:
        msg = (
            f"{ctx.benchmark}: a PostgreSQL measurement was asked for but the run has no "
            "server (set LEADFLOW_POSTGRES_DSN or let the runner start one)"
        )
        raise BenchmarkError(msg)
    return ctx.postgres_dsn


def _drop_schema(dsn: str, schema: str) -> None:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.Error as error:
        log.warning("benchmark_schema_not_dropped", schema=schema, error=str(error))
