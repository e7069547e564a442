"""The file witness: every signed head appended, one JSON object a line, to a file
outside the event store (``LEADFLOW_AUDIT_WITNESS``), so a store rolled back to an
older copy of itself no longer matches the latest witnessed head."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from adapters.audit_log import SignedHead
from adapters.mapper import MAX_STORED_INT
from adapters.private_files import PRIVATE_FILE

WITNESS_SETTING = "LEADFLOW_AUDIT_WITNESS"

log = structlog.get_logger("leadflow.adapters.audit_witness")


class WitnessError(Exception):
    """A witnessed head cannot be read as one (names where and why)."""


_FIELDS = ("position", "link", "key_id", "signature", "signed_at")


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
    """The head a witness line holds; WitnessError saying what is wrong with it."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise WitnessError(f"not JSON ({error})") from None
    if not isinstance(record, dict) or sorted(record) != sorted(_FIELDS):
        raise WitnessError(f"not a JSON object of exactly {', '.join(_FIELDS)}")
    position = record["position"]
    if type(position) is not int or not 1 <= position <= MAX_STORED_INT:
        raise WitnessError(f"position is not a whole number from 1 to {MAX_STORED_INT}")
    for name in ("key_id", "signed_at"):
        if not isinstance(record[name], str):
            raise WitnessError(f"{name} is not text")
    return SignedHead(
        position=position,
        link=_hex(record, "link", 32),
        key_id=record["key_id"],
        signature=_hex(record, "signature", 64),
        signed_at=record["signed_at"],
    )


def _hex(record: dict[str, object], name: str, size: int) -> bytes:
    value = record[name]
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise WitnessError(f"{name} is not {size} bytes of hex")
    return raw


def _ends_torn(path: Path) -> bool:
    """The file's last line has no newline (an append cut short); False when unreadable."""
    try:
        with path.open("rb") as file:
            if file.seek(0, os.SEEK_END) == 0:
                return False
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class WitnessReading:
    """The heads a witness holds, each with its line number, and one text per line (or
    file) that cannot be read as a head."""

    heads: list[tuple[int, SignedHead]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class FileWitness:
    """Appends signed heads to ``path`` (created on first use, never rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: Sequence[SignedHead]) -> None:
        if not heads:
            return
        lines = "".join(head_to_json(h) + "\n" for h in heads)
        if _ends_torn(self.path):  # the torn line stays one (reported); these stay readable
            lines = "\n" + lines
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        descriptor = os.open(self.path, flags, PRIVATE_FILE)  # an existing file keeps its mode
        try:
            os.write(descriptor, lines.encode("ascii"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        log.debug("heads_witnessed", witness=str(self.path), position=heads[-1].position)

    def read(self) -> WitnessReading:
        """Every witnessed head, in the order appended, and every line that is not one
        (also a torn last line, from a crash while appending: what it held is unknown)."""
        reading = WitnessReading()
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return reading
        except OSError as error:
            reading.problems.append(
                f"{WITNESS_SETTING}: cannot read {self.path}: {error.strerror or error}"
            )
            return reading
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                reading.heads.append((number, head_from_json(line)))
            except WitnessError as error:
                torn = (
                    " (the last line: an append cut short, or an edit)"
                    if number == len(lines)
                    else ""
                )
                reading.problems.append(
                    f"{WITNESS_SETTING}: {self.path} line {number} is not a signed head: "
                    f"{error}{torn}"
                )
        return reading
