"""Loading the facts a batch touches, and writing back what it changed, in one transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from projections.facts import DealFacts, LeadFacts, Visit
from projections.schema import DEALS, LEAD_REACHED, LEAD_VISITS, LEADS, Table
from projections.store import Row, Tx

_CHUNK = 500


def _chunks(ids: Collection[str]) -> Iterator[list[str]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def select_in(
    tx: Tx, columns: str, table: str, key: str, ids: Collection[str], also: str = ""
) -> list[Row]:
    """Rows whose ``key`` is one of ``ids`` (and that match the ``also`` condition)."""
    rows: list[Row] = []
    for chunk in _chunks(ids):
        condition, params = tx.dialect.one_of(key, chunk)
        where = f"{condition}{f' AND {also}' if also else ''}"
        rows += tx.execute(f"SELECT {columns} FROM {table} WHERE {where}", params)  # noqa: S608
    return rows


def load_leads(tx: Tx, lead_ids: Collection[str]) -> dict[str, LeadFacts]:
    leads = {
        row[0]: LeadFacts(*row)
        for row in select_in(tx, ", ".join(LEADS.column_names), LEADS.name, "lead_id", lead_ids)
    }
    if not leads:
        return leads
    for lead_id, stage in select_in(
        tx, "lead_id, stage", LEAD_REACHED.name, "lead_id", leads.keys()
    ):
        leads[lead_id].reached.add(stage)
    open_visits = select_in(
        tx,
        "lead_id, seq, stage, entered_at, exited_at, exited_to",
        LEAD_VISITS.name,
        "lead_id",
        leads.keys(),
        also="exited_at IS NULL",
    )
    for lead_id, *visit in open_visits:
        leads[lead_id].open_visit = Visit(*visit)
    return leads


def load_deals(tx: Tx, deal_ids: Collection[str]) -> dict[str, DealFacts]:
    rows = select_in(tx, ", ".join(DEALS.column_names), DEALS.name, "deal_id", deal_ids)
    return {row[0]: DealFacts(*row) for row in rows}


def _upsert(tx: Tx, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.column_names if c not in table.key)
    conflict = f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
    tx.insert(table, rows, conflict)


def save_leads(tx: Tx, leads: Sequence[LeadFacts]) -> None:
    _upsert(tx, LEADS, [lead.row() for lead in leads])
    reached = [
        (lead.lead_id, stage, at) for lead in leads for stage, at in lead.new_reached.items()
    ]
    tx.insert(LEAD_REACHED, reached, "ON CONFLICT (lead_id, stage) DO NOTHING")
    visits = [
        (lead.lead_id, v.seq, v.stage, v.entered_at, v.exited_at, v.exited_to)
        for lead in leads
        for v in lead.changed_visits.values()
    ]
    _upsert(tx, LEAD_VISITS, visits)


def save_deals(tx: Tx, deals: Sequence[DealFacts]) -> None:
    _upsert(tx, DEALS, [deal.row() for deal in deals])
