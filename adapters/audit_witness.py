"""The file witness: every signed head appended, one JSON object a line, to a file
outside the event store (``LEADFLOW_AUDIT_WITNESS``), so a store rolled back to an
older copy of itself no longer matches the latest witnessed head."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import structlog

from adapters.audit_log import SignedHead
from adapters.private_files import PRIVATE_FILE

WITNESS_SETTING = "LEADFLOW_AUDIT_WITNESS"

log = structlog.get_logger("leadflow.adapters.audit_witness")


class WitnessError(Exception):
    """The witness file cannot be read as one (names the file and line)."""


def head_to_json(head: SignedHead) -> str:
    return json.dumps(
        {
            "position": head.position,
            "link": head.link.hex(),
            "key_id": head.key_id,
            "signature": head.signature.hex(),
            "signed_at": head.signed_at,
        },
        separators=(",", ":"),
    )


def head_from_json(text: str) -> SignedHead:
    record = json.loads(text)
    return SignedHead(
        position=int(record["position"]),
        link=bytes.fromhex(record["link"]),
        key_id=str(record["key_id"]),
        signature=bytes.fromhex(record["signature"]),
        signed_at=str(record["signed_at"]),
    )


class FileWitness:
    """Appends signed heads to ``path`` (created on first use, never rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: Sequence[SignedHead]) -> None:
        if not heads:
            return
        lines = "".join(head_to_json(h) + "\n" for h in heads)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        descriptor = os.open(self.path, flags, PRIVATE_FILE)  # an existing file keeps its mode
        try:
            os.write(descriptor, lines.encode("ascii"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        log.debug("heads_witnessed", witness=str(self.path), position=heads[-1].position)

    def heads(self) -> list[SignedHead]:
        """Every witnessed head, in the order appended (a torn last line, from a crash
        while appending, is skipped); WitnessError names any other unreadable line."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="ascii", errors="replace").splitlines()
        heads: list[SignedHead] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                heads.append(head_from_json(line))
            except (ValueError, KeyError, TypeError) as error:
                if number == len(lines):
                    continue
                msg = f"{WITNESS_SETTING}: {self.path} line {number} is not a signed head: {error}"
                raise WitnessError(msg) from None
        return heads
