"""The local PostgreSQL server accepts the ``leadflow`` login and behaves transactionally."""

from __future__ import annotations

import uuid

import psycopg
import pytest

pytestmark = pytest.mark.postgres


def test_round_trip_and_rollback(postgres_dsn: str) -> None:
    table = f"infra_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (1, "kept"))
        conn.commit()

        conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (2, "rolled back"))
        conn.rollback()

        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (3, "also rolled back"))
            conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (1, "duplicate"))

        rows = conn.execute(f"SELECT id, name FROM {table} ORDER BY id").fetchall()
        assert rows == [(1, "kept")]
        conn.execute(f"DROP TABLE {table}")
        conn.commit()


def test_server_settings(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SELECT current_user").fetchone() == ("leadflow",)
