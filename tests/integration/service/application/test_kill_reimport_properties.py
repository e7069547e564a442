"""Property: an import SIGKILLed at a random point, then run again, gives the read models
and the refusal report of one clean import, on SQLite and PostgreSQL.

The import runs in a child process that kills itself with SIGKILL at the k-th write of
the event store: either inside its transaction (events and ledger rows inserted, not
committed) or between transactions (the writes before it committed). The command files
are those of ``test_reimport_properties`` (refused lines, duplicates, formatting variants,
explicit command ids).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.settings import Settings
from leadflow.bootstrap import open_application
from service.importer import import_commands
from tests.integration.service.application.test_reimport_properties import (
    _refusals,
    command_files,
    fresh_store,
    imported,
)

CHILD_BATCH = 3  # small batches: more writes to die at
KillPoint = Literal["inside_transaction", "between_transactions"]
# a fresh interpreter: a forked child of this multi-threaded test run could inherit a lock
# some thread held at the fork and wait on it for ever
_SPAWN = multiprocessing.get_context("spawn")


def _import_then_die(settings_: Settings, lines: list[str], write: int, point: KillPoint) -> None:
    """The child: import ``lines``, SIGKILLing itself at the ``write``-th store write."""
    with open_application(settings_) as app:
        recorder: Any = type(app.recorder)  # patched in this child process only
        writes = 0
        insert_events, insert_rows = recorder.insert_events, recorder._insert_events

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal writes
            writes += 1
            if point == "between_transactions" and writes == write:
                os.kill(os.getpid(), signal.SIGKILL)
            return insert_events(self, *args, **kwargs)

        def inserted(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = insert_rows(self, *args, **kwargs)
            if point == "inside_transaction" and writes == write:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        recorder.insert_events = counted
        recorder._insert_events = inserted
        import_commands(lines, app, batch_size=CHILD_BATCH)
    os._exit(0)  # the import ended before the write it was to die at


def killed_import(settings_: Settings, lines: list[str], write: int, point: KillPoint) -> int:
    child = _SPAWN.Process(target=_import_then_die, args=(settings_, lines, write, point))
    child.start()
    child.join(timeout=120)
    assert child.exitcode is not None, "the killed import did not end"
    return child.exitcode


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=command_files(),
    point=st.sampled_from(["inside_transaction", "between_transactions"]),
    data=st.data(),
)
def test_an_import_killed_at_a_random_point_then_rerun_ends_like_a_clean_import(
    backend: str,
    request: pytest.FixtureRequest,
    lines: list[str],
    point: KillPoint,
    data: st.DataObject,
) -> None:
    batches = -(-len(lines) // CHILD_BATCH)
    write = data.draw(st.integers(min_value=1, max_value=batches), label="write")
    dsn = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    with fresh_store(backend, dsn) as clean, fresh_store(backend, dsn, clean) as crashed:
        (only,), models_clean = imported(clean, lines, 1)
        exit_code = killed_import(crashed, lines, write, point)
        (rerun,), models_rerun = imported(crashed, lines, 1)

    assert exit_code in (0, -signal.SIGKILL)
    assert _refusals(rerun) == _refusals(only)
    assert rerun.applied + rerun.duplicate == only.applied + only.duplicate
    assert models_rerun == models_clean
