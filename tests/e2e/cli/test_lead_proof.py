"""A lead's proof (``leadflow history LEAD --proof FILE``) checked by the standalone
verifier with the public key only: it verifies, and no single changed byte of it does;
a store an attacker edited gets no proof. On SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import leadflow_verify
from leadflow_verify import ProofError, canonical, load_public_key, verify_proof
from tests.e2e.cli.conftest import Cli
from tests.e2e.cli.log_attacker import Attacker
from tests.e2e.cli.test_signed_log import ADA, BOB, _two_leads, signed
from tests.store_ids import deal_uuid, lead_uuid

__all__ = ["signed"]  # the fixture: a store signed by a new audit key
# the session's PostgreSQL is looked up before ``data_dir`` clears LEADFLOW_* variables
pytestmark = pytest.mark.usefixtures("postgres_dsn")


def _public_key(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "audit.pem.pub"


@pytest.fixture
def proof(cli: Cli, signed: Path, tmp_path: Path) -> Path:
    """Ada's proof, her lead and won deal interleaved with Bob's events."""
    del signed
    _two_leads(cli)
    assert cli("log-contact", BOB, "--channel", "email").code == 0
    assert cli("log-contact", ADA, "--channel", "call").code == 0
    out = tmp_path / "ada.proof.json"
    history = cli("history", ADA, "--proof", str(out))
    assert history.code == 0, history.err
    assert f"wrote the proof of 2 aggregates to {out}" in history.err
    return out


def _standalone(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m leadflow_verify`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "leadflow_verify", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_lead_proof_verifies_with_the_public_key_only(proof: Path, tmp_path: Path) -> None:
    done = _standalone(str(proof), "--public-key", str(_public_key(tmp_path)))
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith(f"OK: lead {lead_uuid(ADA)}: 7 events of 2 aggregates")
    text = proof.read_text()
    assert str(deal_uuid("D-1")) in text
    assert BOB not in text  # Bob's events are in other transactions: not in Ada's proof


def test_the_verifier_names_the_first_problem(proof: Path, tmp_path: Path) -> None:
    data = proof.read_bytes()
    edited = data.replace(b'"events":2,', b'"events":3,', 1)
    assert edited != data
    forged = tmp_path / "forged.json"
    forged.write_bytes(edited)
    done = _standalone(str(forged), "--public-key", str(_public_key(tmp_path)))
    assert done.returncode == 1
    assert done.stderr.startswith("FAILED: aggregate ")
    assert "holds versions [1, 2], not 1 to 3" in done.stderr


@pytest.fixture
def proof_bytes(proof: Path, tmp_path: Path) -> Iterator[tuple[bytes, list[Ed25519PublicKey]]]:
    yield proof.read_bytes(), [load_public_key(_public_key(tmp_path))]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(where=st.floats(min_value=0, max_value=1, exclude_max=True), mask=st.integers(1, 255))
def test_any_changed_byte_fails_verification(
    proof_bytes: tuple[bytes, list[Ed25519PublicKey]], where: float, mask: int
) -> None:
    data, public = proof_bytes
    assert verify_proof(data, public).startswith("OK: ")
    position = int(where * len(data))
    changed = bytearray(data)
    changed[position] ^= mask
    with pytest.raises(ProofError):
        verify_proof(bytes(changed), public)


def test_a_store_an_attacker_edited_gets_no_proof(cli: Cli, signed: Path, tmp_path: Path) -> None:
    del signed
    _two_leads(cli)
    attacker = Attacker()
    try:
        [row] = [
            r for r in attacker.rows() if r.originator_id == deal_uuid("D-1") and r.version == 1
        ]
        forged = row.data()
        forged["amount"] = "1.00"
        attacker.write_state(deal_uuid("D-1"), 1, forged)
    finally:
        attacker.close()
    out = tmp_path / "ada.proof.json"
    history = cli("history", ADA, "--proof", str(out))
    assert history.code == 3
    assert "leadflow history: no proof written: the proof does not verify: " in history.err
    assert not out.exists()


@pytest.mark.usefixtures("data_dir")
def test_without_an_audit_key_no_proof_is_written(cli: Cli, tmp_path: Path) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    out = tmp_path / "ada.proof.json"
    history = cli("history", ADA, "--proof", str(out))
    assert history.code == 1
    assert history.messages == [
        "leadflow history: no proof written: a proof needs the signed log: set "
        "LEADFLOW_AUDIT_KEY_FILE"
    ]
    assert not out.exists()


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    allowed = set(sys.stdlib_module_names) | {"cryptography", "leadflow_verify"}
    for source in Path(leadflow_verify.__file__).parent.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.partition(".")[0] in allowed, f"{source.name} imports {name}"


def test_after_a_key_rotation_the_proof_needs_both_keys(
    cli: Cli, signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    del signed
    _two_leads(cli)
    new_key = tmp_path / "keys" / "new.pem"
    assert cli("audit", "keygen", "--out", str(new_key)).code == 0
    rotated = cli("audit", "rotate-key", "--new-key", str(new_key))
    assert rotated.code == 0, rotated.err
    monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(new_key))
    assert cli("log-contact", ADA, "--channel", "call").code == 0
    out = tmp_path / "ada.proof.json"
    history = cli("history", ADA, "--proof", str(out))
    assert history.code == 0, history.err

    new_only = _standalone(str(out), "--public-key", f"{new_key}.pub")
    both = _standalone(
        str(out), "--public-key", str(_public_key(tmp_path)), "--public-key", f"{new_key}.pub"
    )

    assert new_only.returncode == 1
    assert "not by a key given" in new_only.stderr
    assert both.returncode == 0, both.stderr


def test_a_key_rotated_away_from_and_back_to_verifies_and_proves_across_both_rotations(
    cli: Cli, signed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A -> B -> A: A signs before and after B; verify, history and the proof hold."""
    del signed
    first, second = _public_key(tmp_path).with_suffix(""), tmp_path / "keys" / "b.pem"
    assert cli("audit", "keygen", "--out", str(second)).code == 0
    _two_leads(cli)
    for key in (second, first):
        rotated = cli("audit", "rotate-key", "--new-key", str(key))
        assert rotated.code == 0, rotated.err
        monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", str(key))
        assert cli("log-contact", ADA, "--channel", "call").code == 0
    out = tmp_path / "ada.proof.json"

    for auditor_key in (str(first), f"{first}.pub", f"{second}.pub"):
        monkeypatch.setenv("LEADFLOW_AUDIT_KEY_FILE", auditor_key)
        verify = cli("verify")
        assert verify.code == 0, verify.out
        assert "signed log OK" in verify.out
    history = cli("history", ADA, "--proof", str(out))
    assert history.code == 0, history.out + history.err
    both = _standalone(str(out), "--public-key", f"{first}.pub", "--public-key", f"{second}.pub")
    first_only = _standalone(str(out), "--public-key", f"{first}.pub")

    assert both.returncode == 0, both.stderr
    for key in (first, second):
        assert leadflow_verify.key_id(load_public_key(Path(f"{key}.pub"))) in both.stdout
    assert first_only.returncode == 1
    assert "not by a key given" in first_only.stderr


def test_a_proof_of_a_lead_imported_with_others_holds_their_bytes_only(
    cli: Cli, signed: Path, tmp_path: Path
) -> None:
    """One import transaction holds Bob's and Ada's events interleaved: Ada's proof
    carries Bob's stored bytes (for the links) but never his decoded data; any changed
    byte still fails."""
    del signed
    at = {"occurred_at": "2026-01-05T09:00:00Z"}
    lines = [
        {"command": "capture_lead", "lead": ADA, "source": "web", **at},
        {"command": "capture_lead", "lead": BOB, "source": "import", **at},
        {"command": "log_contact", "lead": ADA, "channel": "call", **at},
        {"command": "log_contact", "lead": BOB, "channel": "email", **at},
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert cli("import", str(batch)).code == 0
    out = tmp_path / "ada.proof.json"
    assert cli("history", ADA, "--proof", str(out)).code == 0
    proof = json.loads(out.read_bytes())
    [segment] = proof["segments"]
    foreign = [e for e in segment["entries"] if e["originator_id"] == str(lead_uuid(BOB))]
    assert foreign  # Bob's events stored in the same transaction, up to its head
    assert all("data" not in e for e in foreign)
    keys = [load_public_key(_public_key(tmp_path))]
    data = out.read_bytes()
    assert verify_proof(data, keys).startswith("OK: ")
    for position in range(0, len(data), 97):
        changed = bytearray(data)
        changed[position] ^= 0x01
        with pytest.raises(ProofError):
            verify_proof(bytes(changed), keys)


def _recanonical(data: bytes, edit: Any) -> bytes:
    proof = json.loads(data)
    edit(proof)
    return canonical(proof)


def _drop_deal(proof: dict[str, Any]) -> None:
    """The deal left out as if it were another aggregate (its entries not decoded)."""
    deal = proof["aggregates"].pop(1)["id"]
    for segment in proof["segments"]:
        for entry in segment["entries"]:
            if entry["originator_id"] == deal:
                del entry["data"]


def _float_head_position(proof: dict[str, Any]) -> None:
    proof["segments"][0]["head"]["position"] = float(proof["segments"][0]["head"]["position"])


def _list_key_id(proof: dict[str, Any]) -> None:
    proof["segments"][0]["head"]["key_id"] = []


def _drop_last_segment(proof: dict[str, Any]) -> None:
    """The deal's events are gone with the segment: its versions are missing."""
    del proof["segments"][-1]


def _nested(proof: dict[str, Any]) -> None:
    proof["lead_id"] = [[[[[]]]]]


def _huge_position(proof: dict[str, Any]) -> None:
    proof["segments"][-1]["entries"][0]["position"] = 10**30


def _huge_version(proof: dict[str, Any]) -> None:
    proof["segments"][0]["entries"][0]["version"] = 2**64


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_drop_deal, "which the proof leaves out"),
        (_float_head_position, "segment 1: head position is not a positive integer"),
        (_list_key_id, "segment 1: the head is signed by key [], not by a key given"),
        (_drop_last_segment, "holds versions"),
        (_nested, "lead_id is not a UUID"),
        (_huge_position, "position is beyond 2**63 - 1, the largest a store holds"),
        (_huge_version, "version is beyond 2**63 - 1, the largest a store holds"),
    ],
)
def test_a_crafted_proof_is_refused_naming_the_problem(
    proof_bytes: tuple[bytes, list[Ed25519PublicKey]], edit: Any, problem: str
) -> None:
    data, keys = proof_bytes
    with pytest.raises(ProofError, match=re.escape(problem)):
        verify_proof(_recanonical(data, edit), keys)


def test_a_huge_position_is_a_failed_line_never_a_traceback(proof: Path, tmp_path: Path) -> None:
    forged = tmp_path / "huge.json"
    forged.write_bytes(_recanonical(proof.read_bytes(), _huge_position))
    done = _standalone(str(forged), "--public-key", str(_public_key(tmp_path)))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("FAILED: segment ")
    assert line.endswith(": position is beyond 2**63 - 1, the largest a store holds")
