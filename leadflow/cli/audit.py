"""``leadflow history LEAD``: the auditor's view of one lead and its deals."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from adapters.settings import Settings
from domain.errors import UnknownAggregate
from leadflow.bootstrap import open_application, verify_signed_log
from leadflow.cli.lead_proof import add_proof_option, export_proof
from leadflow.cli.signed_log import render_log_problems, render_unknown_lead_in_damaged_log
from leadflow.errors import CliError
from service.lead_history import (
    AggregateState,
    LeadHistory,
    export_jsonl,
    lead_history,
    parse_as_of,
)

log = structlog.get_logger("leadflow.cli.audit")

EXIT_CHAIN_BROKEN = 3

_EPILOG = """\
Events are listed in recorded order (each aggregate's versions in order, lead and deals
interleaved by recorded_at). occurred_at is business time, recorded_at is when leadflow
stored the event, both UTC.

--as-of T rebuilds the state from the events that occurred (business time) at or before T;
events that occurred before T but were recorded after it are included and counted. A bare
date means the end of that day. Without --as-of the state is the current one.

--export FILE writes JSON Lines: one {"record": "event", ...} line per event, then one
{"record": "summary", ...} line with the hash chains, the as-of state and "verified".

--proof FILE writes the lead's proof for an auditor (needs LEADFLOW_AUDIT_KEY_FILE): its
events as stored and the log links and signed heads that anchor them; check it offline
with: python -m leadflow_verify FILE --public-key KEY.pub

Exit status: 0 when every hash chain verifies, 3 when one is broken (the history is still
printed), 1 on any other error.
"""


def _as_of(text: str) -> datetime:
    try:
        return parse_as_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "history",
        help="full, verified history of one lead and its deals",
        description="Every event of one lead and of its deals, whether their hash chains "
        "verify, and the state as of any business moment.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("lead", metavar="LEAD", help="the lead's email / external id or UUID")
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="T",
        help="business time (ISO 8601 date or date-time; UTC unless an offset is given)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--export", type=Path, metavar="FILE", help="write JSON Lines to FILE")
    add_proof_option(parser)
    parser.set_defaults(handler=history_command)


def history_command(args: argparse.Namespace, settings: Settings) -> int:
    store = settings.store
    if store.dsn is None and not store.sqlite_event_store.exists():
        msg = (
            f"no event store at {store.sqlite_event_store} "
            "(set LEADFLOW_DATA_DIR, or run leadflow demo / leadflow import first)"
        )
        raise CliError(msg)
    for target in (args.export, args.proof):
        if target is not None and not target.expanduser().parent.is_dir():
            msg = f"cannot export to {target}: directory {target.parent} does not exist"
            raise CliError(msg)
    proof_problem = None
    app = open_application(settings)
    try:
        signed_log = verify_signed_log(settings, app, every_signature=False)
        try:
            history = lead_history(app, args.lead, args.as_of)
        except UnknownAggregate:
            if not signed_log.ok:  # the lead may be gone because the log was damaged
                sys.stderr.write(render_unknown_lead_in_damaged_log(args.lead, signed_log))
                return EXIT_CHAIN_BROKEN
            raise
        if args.proof is not None:
            proof_problem = export_proof(args.proof, settings, app, history)
    finally:
        app.close()
    log_problems = signed_log.problems_for(chain.aggregate_id for chain in history.chains)
    if args.export is not None:
        lines = export_jsonl(history, args.export)
        sys.stderr.write(f"exported {lines - 1} events and a summary line to {args.export}\n")
    if args.json:
        sys.stdout.write(json.dumps(history.document(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_history(history) + "\n")
    (sys.stderr if args.json else sys.stdout).write(render_log_problems(log_problems))
    if proof_problem is not None:
        sys.stderr.write(f"leadflow history: no proof written: {proof_problem}\n")
    if not history.verified or log_problems:
        log.warning("history_not_verified", lead_id=str(history.lead_id))
        return EXIT_CHAIN_BROKEN
    return 0 if proof_problem is None else 1


# --- rendering ------------------------------------------------------------------------


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.isoformat().replace("+00:00", "Z")


def render_history(history: LeadHistory) -> str:
    out = [f"lead {history.external_id} ({history.lead_id})", ""]
    for chain in history.chains:
        out.append(f"hash chain of {chain.aggregate} {chain.external_id}: {chain.describe()}")
    out += [f"forged snapshot: {problem}" for problem in history.forged_snapshots]
    out += ["", *_render_events(history), "", *_render_state(history)]
    return "\n".join(out)


def _render_events(history: LeadHistory) -> list[str]:
    headers = (
        "#",
        "occurred_at",
        "recorded_at",
        "aggregate",
        "v",
        "event",
        "actor",
        "causation",
        "correlation",
    )
    rows = [
        (
            str(number),
            _time(e.occurred_at),
            _time(e.recorded_at),
            e.aggregate if e.aggregate == "lead" else f"deal {e.external_id}",
            "?" if e.version is None else str(e.version),
            e.type,
            e.actor or "?",
            e.causation_id or "?",
            e.correlation_id or "?",
        )
        for number, e in enumerate(history.events, 1)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [
        f"history: {len(rows)} events in recorded order "
        "(occurred_at = business time, recorded_at = system time, UTC)",
        line(headers),
        line(tuple("-" * w for w in widths)),
    ]
    indent = " " * (widths[0] + 2)
    for row, event in zip(rows, history.events, strict=True):
        out.append(line(row))
        data = json.dumps(event.data, ensure_ascii=False, separators=(", ", ": "))
        out.append(f"{indent}data: {data}")
        if event.problem:
            out.append(f"{indent}PROBLEM: {event.problem}")
    return out


def _render_state(history: LeadHistory) -> list[str]:
    as_of = history.as_of
    if as_of.at is None:
        out = [f"state now (all {as_of.events_included} events)"]
    else:
        out = [
            f"state as of {_time(as_of.at)} (business time: the {as_of.events_included} "
            f"events with occurred_at <= T; {as_of.recorded_after} of them recorded after T)"
        ]
    out += [f"  {_state_line(state)}" for state in as_of.aggregates]
    return out


def _state_line(state: AggregateState) -> str:
    name = f"{state.aggregate} {state.external_id}:"
    if state.problem:
        return f"{name} {state.problem}"
    if not state.exists or state.state is None:
        return f"{name} did not exist yet"
    s = state.state
    if state.aggregate == "lead":
        parts = [
            f"stage {s['stage']}",
            f"score {s['score']:g}",
            f"owner {s.get('owner') or '-'}",
            f"reached {', '.join(s['reached'])}",
            f"entered stage {s['entered_stage_at']}",
        ]
    else:
        parts = [
            f"stage {s['stage']} ({s['status']})",
            f"amount {s['amount']} {s['currency']}",
            f"owner {s.get('owner') or '-'}",
            f"expected close {s.get('expected_close_date') or '-'}",
            f"entered stage {s['entered_stage_at']}",
        ]
    return f"{name} {' · '.join(parts)} (version {s['version']})"
