"""What a wedged pipeline looks like from outside: PostgreSQL sessions and locks, the
consumer groups as the broker sees them, and every thread's stack of each process."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from kafka import KafkaAdminClient

from tests.e2e.pipeline.pipeline import Pipeline


def postgres_sessions(dsn: str) -> list[str]:
    """Every other session of the database, what it waits for, and the advisory locks."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        sessions = conn.execute(
            "SELECT pid, state, wait_event_type, wait_event, now() - xact_start,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 140)"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() ORDER BY pid"
        ).fetchall()
        locks = conn.execute(
            "SELECT pid, locktype, mode, granted, classid::bigint, objid::bigint,"
            " relation::regclass::text FROM pg_locks"
            " WHERE locktype = 'advisory' OR NOT granted ORDER BY pid"
        ).fetchall()
    lines = [
        f"session {pid} {state} wait={wtype}/{wevent} xact_age={age} query={query!r}"
        for pid, state, wtype, wevent, age, query in sessions
    ]
    lines += [
        f"lock pid={pid} {kind} {mode} granted={granted} key={classid}/{objid} rel={rel}"
        for pid, kind, mode, granted, classid, objid, rel in locks
    ]
    return lines


def consumer_groups(bootstrap: str, groups: list[str]) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        described: dict[str, dict[str, Any]] = admin.describe_groups(groups)
    finally:
        admin.close()
    lines = []
    for group, info in described.items():
        members = [
            f"{m.get('client_host', '?')}:{str(m.get('member_id', '?'))[-8:]}"
            for m in info.get("members", [])
        ]
        lines.append(
            f"group {group}: state={info.get('group_state', info.get('state'))} "
            f"error={info.get('error')} members={members}"
        )
    return lines


def describe(pipeline: Pipeline) -> list[str]:
    """Everything above that can be read right now (a probe that fails says why)."""
    lines: list[str] = []
    stream = pipeline.setup.stream
    probes: list[tuple[str, Any]] = [
        (
            "consumer groups",
            lambda: consumer_groups(
                pipeline.bootstrap, [stream.ingest_group, pipeline.projector_group]
            ),
        )
    ]
    dsn = pipeline.settings.store.dsn
    if dsn is not None:
        probes.append(("postgres", lambda: postgres_sessions(dsn)))
    for name, probe in probes:
        try:
            lines += probe()
        except Exception as error:  # noqa: BLE001 - diagnostics never fail a report
            lines.append(f"{name}: cannot read: {type(error).__name__}: {error}")
    return lines


def stack_dump(log_text: str, limit: int = 80) -> list[str]:
    """The thread stacks faulthandler wrote at the end of a process log (SIGABRT), the
    main thread first; idle connection-pool workers left out."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
    if not starts:
        return []
    blocks: list[list[str]] = []
    for line in lines[starts[-1] + 1 :]:
        if line.startswith(("Thread 0x", "Current thread 0x")):
            blocks.append([line])
        elif blocks and line.startswith("  File "):
            blocks[-1].append(line)
    blocks.sort(key=lambda block: not block[0].startswith("Current thread"))
    shown = [b for b in blocks if not any("psycopg_pool/pool.py" in line for line in b)]
    return [line for block in shown for line in block][:limit]


def log_digest(log_text: str, limit: int = 12) -> list[str]:
    """The last lines of a process log, JSON lines reduced to their event and ids."""
    digest = []
    for line in log_text.splitlines()[-limit:]:
        try:
            event = json.loads(line)
        except ValueError:
            digest.append(line[:200])
            continue
        if isinstance(event, dict):
            fields = {k: v for k, v in event.items() if k not in ("logger", "level")}
            digest.append(json.dumps(fields)[:200])
    return digest
