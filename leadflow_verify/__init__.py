"""Standalone check of a lead's proof, as written by ``leadflow history LEAD --proof``.

Standard library and ``cryptography`` only: an auditor runs it with the organisation's
public audit key and nothing else of leadflow. It checks, and says which check failed:

1. the file is the canonical JSON of its content (sorted keys, no spaces, ASCII, one
   final newline), so no byte of it can change without changing a checked value;
2. each segment: starting from its ``start_link``, every entry's log link
   SHA-256(label, previous link, position, topic, originator, version, stored bytes) is
   recomputed, and the last one must be its head's link; the head's Ed25519 signature
   over (label, position, link, key id, signed at) must verify with one of the public
   keys given (after a key rotation, the old and the new key), and
   the head's key id must be that key's;
3. each event of the lead and its deals (stored bytes decoded, zlib first when
   ``compressed``): its own hash over (topic, id, version, state without ``hash``) and
   its ``prev_hash``, versions 1..n of every aggregate present exactly once, the lead's
   first event a ``LeadCaptured``, each deal's a ``DealOpened`` the lead converted into;
   a decoded copy (``data``) must equal the stored bytes' decoding.

The other entries of a segment (events of other aggregates stored in the same
transaction) are used for their links only. What the proof cannot show: that events
were not deleted after its newest head; ``leadflow verify`` against the witness does.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import struct
import sys
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "leadflow lead proof 1"
GENESIS_HASH = "0" * 64
LINK_LABEL = b"leadflow log chain v1\x00"
HEAD_LABEL = b"leadflow signed head v1\x00"
KEY_ID_LABEL = b"leadflow audit key id v1\x00"


class ProofError(Exception):
    """The first problem found in a proof."""


def canonical(document: Any) -> bytes:
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(KEY_ID_LABEL + raw).hexdigest()[:16]


def log_link(previous: bytes, entry: dict[str, Any], state: bytes) -> bytes:
    topic = entry["topic"].encode("utf-8")
    originator = uuid.UUID(entry["originator_id"]).bytes
    digest = hashlib.sha256(LINK_LABEL + previous)
    digest.update(struct.pack(">QI", entry["position"], len(topic)) + topic)
    digest.update(struct.pack(">I", len(originator)) + originator)
    digest.update(struct.pack(">QQ", entry["version"], len(state)) + state)
    return digest.digest()


def head_message(head: dict[str, Any], link: bytes) -> bytes:
    return bytes(
        HEAD_LABEL
        + struct.pack(">Q", head["position"])
        + link
        + head["key_id"].encode()
        + b"\x00"
        + head["signed_at"].encode()
    )


def own_hash(entry: dict[str, Any], state: dict[str, Any]) -> str:
    body = {k: v for k, v in state.items() if k != "hash"}
    document = {
        "topic": entry["topic"],
        "id": entry["originator_id"],
        "version": entry["version"],
        "state": body,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fields(where: str, value: Any, names: Sequence[str], optional: Sequence[str] = ()) -> None:
    if not isinstance(value, dict):
        raise ProofError(f"{where} is not a JSON object")
    missing = [n for n in names if n not in value]
    extra = sorted(set(value) - set(names) - set(optional))
    if missing or extra:
        raise ProofError(f"{where}: missing {missing or 'nothing'}, unexpected {extra or 'none'}")


MAX_INT = 2**63 - 1  # the largest position or version a store holds (and links pack in 64 bits)


def _int(where: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise ProofError(f"{where} is not a positive integer")
    if value > MAX_INT:
        raise ProofError(f"{where} is beyond 2**63 - 1, the largest a store holds")
    return value


def _hex(where: str, value: Any, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise ProofError(f"{where} is not {size} bytes of hex")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ProofError(f"{where} is not {size} bytes of hex") from None
    if raw.hex() != value:
        raise ProofError(f"{where} is not lowercase hex")
    return raw


def _b64(where: str, value: Any) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ProofError(f"{where} is not base64") from None
    if base64.b64encode(raw).decode() != value:
        raise ProofError(f"{where} is not canonical base64")
    return raw


def _uuid(where: str, value: Any) -> str:
    try:
        text = str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise ProofError(f"{where} is not a UUID") from None
    if text != value:
        raise ProofError(f"{where} is not a UUID in its usual form")
    return text


class _Check:
    def __init__(self, proof: dict[str, Any], keys: Sequence[Ed25519PublicKey]) -> None:
        self.proof = proof
        self.keys = {key_id(public): public for public in keys}
        self.events: dict[str, dict[int, tuple[dict[str, Any], dict[str, Any]]]] = {}
        self.kinds: dict[str, str] = {}

    def run(self) -> str:
        proof = self.proof
        _fields("the proof", proof, ["format", "lead_id", "compressed", "aggregates", "segments"])
        if proof["format"] != FORMAT:
            raise ProofError(f"format is {proof['format']!r}, not {FORMAT!r}")
        if not isinstance(proof["compressed"], bool):
            raise ProofError("compressed is not true or false")
        lead_id = _uuid("lead_id", proof["lead_id"])
        counts = self._aggregates(proof["aggregates"])
        if self.kinds.get(lead_id) != "lead":
            raise ProofError(f"lead {lead_id} is not among the aggregates as a lead")
        segments = proof["segments"]
        if not isinstance(segments, list) or not segments:
            raise ProofError("segments is not a non-empty list")
        last = 0
        for number, segment in enumerate(segments, 1):
            last = self._segment(f"segment {number}", segment, last)
        self._aggregate_chains(counts, lead_id)
        heads = [s["head"] for s in segments]
        total = sum(counts.values())
        return (
            f"OK: lead {lead_id}: {total} events of {len(counts)} aggregates, their hash "
            f"chains intact and tied to {len(heads)} signed heads of key "
            f"{', '.join(sorted({h['key_id'] for h in heads}))} "
            f"(the newest signed at {heads[-1]['signed_at']}, notification {last})"
        )

    def _aggregates(self, aggregates: Any) -> dict[str, int]:
        if not isinstance(aggregates, list) or not aggregates:
            raise ProofError("aggregates is not a non-empty list")
        counts: dict[str, int] = {}
        for number, aggregate in enumerate(aggregates, 1):
            where = f"aggregate {number}"
            _fields(where, aggregate, ["kind", "id", "events"])
            if aggregate["kind"] not in ("lead", "deal"):
                raise ProofError(f"{where}: kind is not lead or deal")
            ident = _uuid(f"{where}: id", aggregate["id"])
            if ident in counts:
                raise ProofError(f"{where}: {ident} is listed twice")
            counts[ident] = _int(f"{where}: events", aggregate["events"])
            self.kinds[ident] = aggregate["kind"]
            self.events[ident] = {}
        return counts

    def _segment(self, where: str, segment: Any, after: int) -> int:
        _fields(where, segment, ["start_link", "entries", "head"])
        link = _hex(f"{where}: start_link", segment["start_link"], 32)
        entries = segment["entries"]
        if not isinstance(entries, list) or not entries:
            raise ProofError(f"{where}: entries is not a non-empty list")
        position = after
        for entry in entries:
            _fields(
                f"{where}: an entry",
                entry,
                ["position", "topic", "originator_id", "version", "state"],
                ["data"],
            )
            here = f"{where}: notification {entry['position']}"
            if _int(f"{where}: position", entry["position"]) <= position:
                raise ProofError(f"{here}: positions do not increase")
            position = entry["position"]
            _int(f"{here}: version", entry["version"])
            if not isinstance(entry["topic"], str):
                raise ProofError(f"{here}: topic is not text")
            _uuid(f"{here}: originator_id", entry["originator_id"])
            state = _b64(f"{here}: state", entry["state"])
            link = log_link(link, entry, state)
            self._own_event(here, entry, state)
        self._head(where, segment["head"], position, link)
        return position

    def _head(self, where: str, head: Any, position: int, link: bytes) -> None:
        _fields(f"{where}: head", head, ["position", "link", "key_id", "signed_at", "signature"])
        if _int(f"{where}: head position", head["position"]) != position:
            raise ProofError(
                f"{where}: the head is at {head['position']}, its last entry at {position}"
            )
        if _hex(f"{where}: head link", head["link"], 32) != link:
            raise ProofError(f"{where}: the entries do not lead to the head's link")
        public = self.keys.get(head["key_id"]) if isinstance(head["key_id"], str) else None
        if public is None:
            raise ProofError(
                f"{where}: the head is signed by key {head['key_id']!r}, not by a key given"
            )
        if not isinstance(head["signed_at"], str):
            raise ProofError(f"{where}: signed_at is not text")
        signature = _b64(f"{where}: signature", head["signature"])
        try:
            public.verify(signature, head_message(head, link))
        except InvalidSignature:
            raise ProofError(f"{where}: the head's signature does not verify") from None

    def _own_event(self, where: str, entry: dict[str, Any], stored: bytes) -> None:
        ident = entry["originator_id"]
        if ident not in self.events:
            if "data" in entry:
                raise ProofError(f"{where}: data given for an event of another aggregate")
            return
        try:
            plain = zlib.decompress(stored) if self.proof["compressed"] else stored
            state = json.loads(plain)
        except (zlib.error, ValueError) as error:
            raise ProofError(f"{where}: the stored state cannot be decoded: {error}") from None
        if not isinstance(state, dict):
            raise ProofError(f"{where}: the stored state is not a JSON object")
        if entry.get("data") != state:
            raise ProofError(f"{where}: data is not the stored state")
        if state.get("hash") != own_hash(entry, state):
            raise ProofError(f"{where}: the event does not match its own hash")
        if entry["version"] in self.events[ident]:
            raise ProofError(f"{where}: version {entry['version']} of {ident} appears twice")
        self.events[ident][entry["version"]] = (entry, state)

    def _aggregate_chains(self, counts: dict[str, int], lead_id: str) -> None:
        converted: set[str] = set()
        for ident, count in counts.items():
            versions = self.events[ident]
            if sorted(versions) != list(range(1, count + 1)):
                raise ProofError(
                    f"aggregate {ident}: holds versions {sorted(versions)}, not 1 to {count}"
                )
            previous = GENESIS_HASH
            for version in range(1, count + 1):
                entry, state = versions[version]
                if state.get("prev_hash") != previous:
                    raise ProofError(
                        f"aggregate {ident} version {version}: prev_hash is not the hash of "
                        "the version before"
                    )
                previous = state["hash"]
                if ident == lead_id and entry["topic"].endswith(":LeadConverted"):
                    converted.add(str(state.get("deal_id")))
            first = {"lead": ":LeadCaptured", "deal": ":DealOpened"}[self.kinds[ident]]
            if not versions[1][0]["topic"].endswith(first):
                raise ProofError(f"aggregate {ident}: its first event is not a {first[1:]}")
        deals = {ident for ident, kind in self.kinds.items() if kind == "deal"}
        if stray := sorted(deals - converted):
            raise ProofError(f"deal {stray[0]} is not a deal the lead converted into")
        if left_out := sorted(converted - deals):
            raise ProofError(
                f"the lead converted into deal {left_out[0]}, which the proof leaves out"
            )


def verify_proof(data: bytes, keys: Sequence[Ed25519PublicKey]) -> str:
    """The one-line OK of a proof, or ProofError naming its first problem."""
    try:
        proof = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ProofError(f"not JSON: {error}") from None
    if canonical(proof) != data:
        raise ProofError("not in canonical form (sorted keys, no spaces, ASCII, one newline)")
    return _Check(proof, keys).run()


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ProofError(f"cannot read the public key {path}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ProofError(f"{path} is not an Ed25519 public key")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leadflow_verify",
        description="Check a lead's proof (leadflow history LEAD --proof FILE) offline.",
        epilog="Exit status: 0 when it verifies, 1 when it does not (the first problem is "
        "named), 2 on bad usage.",
    )
    parser.add_argument("proof", type=Path, help="the proof file")
    parser.add_argument(
        "--public-key",
        type=Path,
        action="append",
        required=True,
        help="the audit key's public part (PEM); repeat it for each key after a rotation",
    )
    args = parser.parse_args(argv)
    try:
        keys = [load_public_key(path) for path in args.public_key]
        data = args.proof.read_bytes()
        sys.stdout.write(verify_proof(data, keys) + "\n")
    except OSError as error:
        sys.stderr.write(f"FAILED: cannot read {args.proof}: {error.strerror or error}\n")
        return 1
    except ProofError as error:
        sys.stderr.write(f"FAILED: {error}\n")
        return 1
    return 0
