"""The signed log's parts on their own: key files, the file witness, the key ring that
rotation records build, and the link (which commits to every stored byte)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.audit_keys import generate_key_pair, load_audit_key
from adapters.audit_log import GENESIS, link_for, sign_head
from adapters.audit_rotation import Rotation, key_ring
from adapters.audit_witness import FileWitness, WitnessError, head_from_json, head_to_json
from adapters.event_store import StoreSettingsError


def test_a_generated_key_loads_and_its_public_part_only_verifies(tmp_path: Path) -> None:
    made = generate_key_pair(tmp_path / "k.pem")
    private = load_audit_key(tmp_path / "k.pem")
    public = load_audit_key(tmp_path / "k.pem.pub")
    head = sign_head(private, 7, bytes(32))

    assert private.key_id == public.key_id == made.key_id
    assert public.verifies(head.message(), head.signature)
    with pytest.raises(StoreSettingsError, match=r"LEADFLOW_AUDIT_KEY_FILE: .* only a public key"):
        sign_head(public, 8, bytes(32))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a key", "is not a PEM key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "is not a PEM key"),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "is not an Ed25519 key",
        ),
    ],
)
def test_a_bad_key_file_is_named(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(content)

    with pytest.raises(
        StoreSettingsError, match=re.escape(f"LEADFLOW_AUDIT_KEY_FILE: {path} {expected}")
    ):
        load_audit_key(path)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StoreSettingsError, match="LEADFLOW_AUDIT_KEY_FILE: cannot read"):
        load_audit_key(tmp_path / "absent.pem")


def test_the_witness_names_every_line_that_is_not_a_head_also_a_torn_last_one(
    tmp_path: Path,
) -> None:
    key = generate_key_pair(tmp_path / "k.pem")
    witness = FileWitness(tmp_path / "w.jsonl")
    witness.append([sign_head(key, 1, bytes(32)), sign_head(key, 2, bytes(32))])
    with witness.path.open("a") as file:
        file.write('{}\n{"position": 3, "li')

    reading = witness.read()

    assert [(n, h.position) for n, h in reading.heads] == [(1, 1), (2, 2)]
    blank, torn = reading.problems
    assert f"{witness.path} line 3 is not a signed head: not a JSON object" in blank
    assert f"{witness.path} line 4 is not a signed head: not JSON" in torn
    assert "cut short" in torn
    assert FileWitness(tmp_path / "absent.jsonl").read().problems == []
    assert "cannot read" in FileWitness(tmp_path).read().problems[0]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=9), inner),
    max_leaves=8,
)


@settings(max_examples=150)
@given(
    record=st.fixed_dictionaries(
        {},
        optional={
            name: _JSON | st.just("ab" * 32) | st.just("cd" * 64)
            for name in ("position", "link", "key_id", "signature", "signed_at")
        },
    )
    | _JSON
)
def test_any_json_is_a_head_or_a_witness_error_never_another_exception(record: Any) -> None:
    text = json.dumps(record)
    try:
        head = head_from_json(text)
    except WitnessError:
        return
    assert json.loads(head_to_json(head)) == record


def test_a_head_appended_after_a_torn_line_is_read_on_a_line_of_its_own(tmp_path: Path) -> None:
    key = generate_key_pair(tmp_path / "k.pem")
    witness = FileWitness(tmp_path / "w.jsonl")
    witness.path.write_text('{"position": 1, "li')
    head = sign_head(key, 2, bytes(32))

    witness.append([head])
    reading = witness.read()

    assert reading.heads == [(2, head)]
    assert len(reading.problems) == 1
    assert "line 1 is not a signed head" in reading.problems[0]


def test_a_head_round_trips_through_its_json_line(tmp_path: Path) -> None:
    key = generate_key_pair(tmp_path / "k.pem")
    head = sign_head(key, 12, bytes(range(32)))

    record = json.loads(head_to_json(head))

    assert record["position"] == 12
    assert record["key_id"] == key.key_id
    witness = FileWitness(tmp_path / "w.jsonl")
    witness.append([head])
    assert witness.read().heads == [(1, head)]


def _rotation(old_path: Path, new_path: Path, up_to: int) -> Rotation:
    old, new = generate_key_pair(old_path), generate_key_pair(new_path)
    unsigned = Rotation(
        old.public_only().public.public_bytes_raw(),
        new.public.public_bytes_raw(),
        up_to,
        "2026-12-03T00:00:00+00:00",
        b"",
        b"",
    )
    return Rotation(
        unsigned.old_public,
        unsigned.new_public,
        up_to,
        unsigned.rotated_at,
        old.sign(unsigned.message()),
        new.sign(unsigned.message()),
    )


def test_rotation_records_tie_either_key_to_the_other_each_for_its_positions(
    tmp_path: Path,
) -> None:
    rotation = _rotation(tmp_path / "a.pem", tmp_path / "b.pem", 10)
    a, b = load_audit_key(tmp_path / "a.pem.pub"), load_audit_key(tmp_path / "b.pem.pub")

    for trusted in (a, b):
        ring = key_ring(trusted, [rotation])
        assert ring[a.key_id].covers(10) and not ring[a.key_id].covers(11)
        assert ring[b.key_id].covers(11) and not ring[b.key_id].covers(10)
    forged = replace(rotation, new_signature=b"\x00" * 64)
    assert set(key_ring(a, [forged])) == {a.key_id}


@settings(max_examples=50)
@given(
    position=st.integers(min_value=1, max_value=2**40),
    version=st.integers(min_value=1, max_value=2**31),
    topic=st.text(min_size=1, max_size=40),
    state=st.binary(max_size=200),
    field=st.sampled_from(["position", "version", "topic", "state", "previous", "originator"]),
)
def test_a_link_commits_to_every_part(
    position: int, version: int, topic: str, state: bytes, field: str
) -> None:
    originator = uuid4()
    parts: dict[str, Any] = {
        "previous": GENESIS,
        "position": position,
        "topic": topic,
        "originator": originator,
        "version": version,
        "state": state,
    }
    changed = dict(parts)
    changed[field] = {
        "previous": b"\x01" * 32,
        "position": position + 1,
        "topic": topic + "x",
        "originator": uuid4(),
        "version": version + 1,
        "state": state + b"\x00",
    }[field]

    def link(p: dict[str, Any]) -> bytes:
        return link_for(
            p["previous"],
            p["position"],
            p["topic"],
            p["originator"],
            p["version"],
            p["state"],
        )

    assert link(parts) != link(changed)
