"""``leadflow audit keygen`` and ``rotate-key``: the Ed25519 keys that sign the event log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import structlog

from adapters.audit_keys import generate_key_pair, public_key_path
from adapters.settings import Settings
from leadflow.bootstrap import rotate_audit_key
from leadflow.errors import CliError

log = structlog.get_logger("leadflow.cli.audit_keys")

_EPILOG = """\
Set LEADFLOW_AUDIT_KEY_FILE=FILE to sign the head of the event log after every
transaction, and LEADFLOW_AUDIT_WITNESS to a file outside the data directory to keep
every signed head there too. Give auditors FILE.pub only: with it, leadflow verify
checks the log but cannot write.
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "audit", help="keys of the signed event log", description="Keys of the signed event log."
    )
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    keygen = commands.add_parser(
        "keygen",
        help="write a new Ed25519 key pair (FILE mode 0600, FILE.pub beside it)",
        description="Write a new Ed25519 key pair: the private key to FILE (mode 0600), "
        "the public key to FILE.pub. Existing files are never overwritten.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keygen.add_argument("--out", type=Path, required=True, metavar="FILE")
    keygen.set_defaults(handler=keygen_command)
    rotate = commands.add_parser(
        "rotate-key",
        help="make another key the store's audit key (recorded, signed by both keys)",
        description="Record in the event store that the audit key changes from the one "
        "LEADFLOW_AUDIT_KEY_FILE names to the one in --new-key (both private keys, from "
        "leadflow audit keygen), signed by both, at the log's current head. Stop every "
        "process that writes events first, and start them again with "
        "LEADFLOW_AUDIT_KEY_FILE set to the new key; a start with the old key is refused. "
        "verify checks the heads signed before the rotation with the old key, those after "
        "with the new one, given either.",
    )
    rotate.add_argument("--new-key", type=Path, required=True, metavar="FILE")
    rotate.set_defaults(handler=rotate_key_command)


def keygen_command(args: argparse.Namespace, settings: Settings) -> int:
    del settings
    out: Path = args.out.expanduser()
    if not out.parent.is_dir():
        raise CliError(f"cannot write {out}: directory {out.parent} does not exist")
    try:
        key = generate_key_pair(out)
    except FileExistsError as error:
        raise CliError(str(error)) from None
    log.info("audit_key_generated", key_id=key.key_id)
    sys.stdout.write(
        f"audit key {key.key_id}: private key {out} (mode 0600), "
        f"public key {public_key_path(out)}\n"
    )
    return 0


def rotate_key_command(args: argparse.Namespace, settings: Settings) -> int:
    rotation = rotate_audit_key(settings, args.new_key)
    old, new = rotation.keys()
    sys.stdout.write(
        f"audit key rotated from {old.key_id} to {new.key_id} after notification "
        f"{rotation.up_to}; set LEADFLOW_AUDIT_KEY_FILE={args.new_key} for every process\n"
    )
    return 0
