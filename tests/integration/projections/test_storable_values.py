"""What no read-model database can store is refused before it reaches one, by position."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.stage_model import load_stage_model
from projections.schema import LEADS
from projections.store import UnstorableValue, _check_storable
from tests.integration.projections.helpers import new_read_model


@pytest.mark.parametrize(
    "params",
    [
        (),
        ("plain", 1, None, 2.5, b"bytes"),
        ("ünïcödé ✓", -(2**63), 2**63 - 1),
        (["a", "b"], [1, 2], "c"),
    ],
)
def test_storable_parameters_pass(params: tuple[Any, ...]) -> None:
    _check_storable(params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (("ok", "nul\x00here"), "parameter 2 contains a NUL character"),
        (("ok", "lone \ud800 surrogate"), "parameter 2 is not valid Unicode text"),
        ((1, 2**63), "parameter 2 does not fit in 64 bits"),
        ((-(2**63) - 1,), "parameter 1 does not fit in 64 bits"),
        (("x", ["fine", "bad\x00"]), "parameter 2 contains a NUL character"),
        (("x", [1, 2**64]), "parameter 2 does not fit in 64 bits"),
    ],
)
def test_unstorable_parameter_is_named(params: tuple[Any, ...], message: str) -> None:
    with pytest.raises(UnstorableValue, match=message):
        _check_storable(params)


def _lead_row(lead_id: str | None, employees: Any) -> tuple[Any, ...]:
    at = "2026-01-05T09:00:00.000000+00:00"
    # lead_id, external_id, version, source, campaign, employees, segment, cohort,
    # captured_at, stage, entered_stage_at, owner, score, last_activity_at, visits, ...
    return (
        lead_id,
        "ext-é",
        1,
        "web",
        None,
        employees,
        "smb",
        "2026-01",
        at,
        "new",
        at,
        None,
        0.0,
        at,
        1,
        0,
        0,
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_both_stores_take_and_refuse_the_same_rows(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """PostgreSQL gets each column as one binary array: whole and fractional numbers of a
    real column together, columns of NULLs, text beyond ASCII; both stores read back the
    same rows, and refuse a number beyond 64 bits alike."""
    rows = [_lead_row("a", 250), _lead_row("b", 250.5), _lead_row("c", None)]
    with new_read_model(request, kind, tmp_path, load_stage_model()) as store:
        store.write(lambda tx: tx.insert(LEADS, rows))
        stored = store.rows(LEADS)
        with pytest.raises(UnstorableValue, match="does not fit in 64 bits"):
            store.write(lambda tx: tx.insert(LEADS, [_lead_row("d", 2**64)]))
    assert [row[5] for row in stored] == [250.0, 250.5, None]
    assert [type(row[5]) for row in stored[:2]] == [float, float]
    assert [row[:5] + row[6:] for row in stored] == [row[:5] + row[6:] for row in rows]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_both_stores_take_and_refuse_the_same_many_rows(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """Many rows at once (PostgreSQL: a binary COPY through a staging table) are stored,
    upserted and refused exactly as a few are; a refused batch leaves nothing behind."""
    employees: list[Any] = [250, 250.5, None]
    rows = [_lead_row(f"lead-{n:04d}", employees[n % 3]) for n in range(300)]
    upsert = "ON CONFLICT (lead_id) DO UPDATE SET version = excluded.version"
    with new_read_model(request, kind, tmp_path, load_stage_model()) as store:
        store.write(lambda tx: tx.insert(LEADS, rows))
        again = [(*row[:2], 2, *row[3:]) for row in rows]
        store.write(lambda tx: tx.insert(LEADS, again, upsert))
        stored = store.rows(LEADS)
        too_big = [_lead_row(f"new-{n:04d}", 2**64 if n == 150 else 1) for n in range(200)]
        with pytest.raises(UnstorableValue, match="does not fit in 64 bits"):
            store.write(lambda tx: tx.insert(LEADS, too_big))
        no_key = [_lead_row(f"new-{n:04d}", 1) for n in range(199)] + [_lead_row(None, 1)]
        with pytest.raises(Exception) as refused:
            store.write(lambda tx: tx.insert(LEADS, no_key))
        assert store.is_data_error(refused.value)
        assert store.rows(LEADS) == stored, "a refused batch writes nothing"
    assert [row[5] for row in stored] == [
        float(e) if e is not None else None for e in employees
    ] * 100
    assert [row[2] for row in stored] == [2] * 300
    assert [row[:2] + row[3:5] + row[6:] for row in stored] == [
        row[:2] + row[3:5] + row[6:] for row in rows
    ]
