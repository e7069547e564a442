"""The key ring from rotation records: each key signs exactly the ranges of the log in
which it was the store's key, also a key rotated away from and back to."""

from __future__ import annotations

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.audit_keys import AuditKey, raw_public_bytes
from adapters.audit_rotation import Rotation, key_ring


def _key() -> AuditKey:
    private = Ed25519PrivateKey.generate()
    return AuditKey(private.public_key(), private, None)


KEYS = [_key() for _ in range(3)]
A, B, C = KEYS


def _rotation(old: AuditKey, new: AuditKey, up_to: int, at: int = 0) -> Rotation:
    unsigned = Rotation(
        raw_public_bytes(old.public),
        raw_public_bytes(new.public),
        up_to,
        f"2026-12-03T00:00:{at:02d}+00:00",
        b"",
        b"",
    )
    message = unsigned.message()
    return replace(unsigned, old_signature=old.sign(message), new_signature=new.sign(message))


def test_a_key_rotated_back_to_signs_before_and_after_the_other() -> None:
    rotations = [_rotation(A, B, 2, 1), _rotation(B, A, 4, 2)]

    for trusted in (A.public_only(), B.public_only()):
        ring = key_ring(trusted, rotations)
        assert [p for p in range(1, 8) if ring[A.key_id].covers(p)] == [1, 2, 5, 6, 7]
        assert [p for p in range(1, 8) if ring[B.key_id].covers(p)] == [3, 4]
    assert ring[A.key_id].describe_ranges() == "1 to 2, 5 onwards"


def test_a_rotation_back_with_no_write_between_leaves_the_other_key_nothing() -> None:
    ring = key_ring(A, [_rotation(B, A, 2, 2), _rotation(A, B, 2, 1)])

    assert not any(ring[B.key_id].covers(p) for p in range(1, 6))
    assert ring[B.key_id].describe_ranges() == "none"
    assert all(ring[A.key_id].covers(p) for p in range(1, 6))


def test_records_not_tied_to_the_trusted_key_do_not_cut_its_ranges() -> None:
    """Anyone can sign a record between two keys of their own: it is not followed."""
    stranger = _rotation(B, C, 3)
    half_forged = replace(_rotation(A, C, 5), new_signature=bytes(64))

    ring = key_ring(A, [stranger, half_forged])

    assert set(ring) == {A.key_id}
    assert all(ring[A.key_id].covers(p) for p in range(1, 10))


@settings(max_examples=30, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=2), st.integers(min_value=0, max_value=3)),
        max_size=6,
    ),
    trusted=st.integers(min_value=0, max_value=2),
)
def test_every_position_is_covered_by_the_key_that_was_current_there(
    steps: list[tuple[int, int]], trusted: int
) -> None:
    """Rotations from key to key (back and forth, some with no write between): every
    position is signable by its key and by no other."""
    current, position, rotations = 0, 0, []
    owner: dict[int, int] = {}
    in_records: set[int] = set()
    for number, (shift, writes) in enumerate(steps):
        for _ in range(writes):
            position += 1
            owner[position] = current
        following = (current + shift) % 3
        rotations.append(_rotation(KEYS[current], KEYS[following], position, number))
        in_records |= {current, following}
        current = following
    for _ in range(2):
        position += 1
        owner[position] = current
    ring = key_ring(KEYS[trusted].public_only(), list(reversed(rotations)))

    if trusted not in in_records:
        assert set(ring) == {KEYS[trusted].key_id}
        return
    for at, index in owner.items():
        signers = {i for i, k in enumerate(KEYS) if k.key_id in ring and ring[k.key_id].covers(at)}
        assert signers == {index}, (at, index, signers)
