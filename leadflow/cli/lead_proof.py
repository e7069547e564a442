"""``leadflow history LEAD --proof FILE``: the lead's proof for an offline auditor."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapters.audit_config import audit_config
from adapters.settings import Settings
from leadflow.bootstrap import open_store_db
from service.application import LeadflowApp
from service.lead_history import LeadHistory, write_whole
from service.lead_proof import ProofUnavailable, lead_proof

PROOF_HELP = (
    "write the lead's proof to FILE: its events as stored, the log links and signed heads "
    "that anchor them; check it with python -m leadflow_verify FILE --public-key KEY.pub"
)


def add_proof_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proof", type=Path, metavar="FILE", help=PROOF_HELP)


def export_proof(
    path: Path, settings: Settings, app: LeadflowApp, history: LeadHistory
) -> str | None:
    """Write the proof of ``history``'s lead to ``path``; why not, when it cannot be."""
    key = audit_config(settings.audit, settings.store.data_dir).key
    if key is None:
        return "a proof needs the signed log: set LEADFLOW_AUDIT_KEY_FILE"
    aggregates = {chain.aggregate_id: chain.aggregate for chain in history.chains}
    try:
        with open_store_db(settings) as db:
            data = lead_proof(
                app,
                db,
                key,
                history.lead_id,
                aggregates,
                compressed=settings.store.compress_events,
            )
    except ProofUnavailable as error:
        return str(error)
    write_whole(path, data)
    sys.stderr.write(f"wrote the proof of {len(aggregates)} aggregates to {path}\n")
    return None
