"""``leadflow forget LEAD --reason TEXT``: erase one lead's personal data (GDPR Art. 17)."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.settings import Settings
from leadflow.bootstrap import forget_lead

DEFAULT_ACTOR = "cli"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "forget",
        help="erase a lead's personal data (its data key is destroyed)",
        description="Erase a lead's personal data on request: records LeadErased (who "
        "asked, why, when), destroys the lead's data key so that the personal fields of "
        "its events and its deals' events read as [erased], deletes their snapshots and "
        "overwrites the command ledger's mentions of it. Stages, times and amounts stay; "
        "the hash chains still verify. The lead takes no further commands.",
    )
    parser.add_argument("ref", metavar="LEAD", help="external id (email) or UUID")
    parser.add_argument(
        "--reason",
        required=True,
        help="why (recorded in plain on the LeadErased event: do not name the person)",
    )
    parser.add_argument(
        "--actor", default=DEFAULT_ACTOR, help=f"who asked (default: {DEFAULT_ACTOR})"
    )
    parser.set_defaults(handler=run_forget)


def run_forget(args: argparse.Namespace, settings: Settings) -> int:
    erasure = forget_lead(settings, args.ref, args.reason, args.actor)
    deals = f" and its {len(erasure.deal_ids)} deals" if erasure.deal_ids else ""
    print(
        f"erased: lead {erasure.lead_id}{deals} at {erasure.erased_at.isoformat()}: "
        f"data key destroyed, {erasure.snapshots_deleted} snapshots deleted, "
        f"{erasure.ledger_rows_scrubbed} ledger rows and {erasure.ingest_records_scrubbed} "
        "ingest records overwritten" + (", its external id unlinked" if erasure.unlinked else "")
    )
    if not erasure.key_destroyed:
        print(
            "warning: the lead had no data key: its events were stored before per-lead keys "
            "and their personal fields are NOT erased"
        )
    return 0
