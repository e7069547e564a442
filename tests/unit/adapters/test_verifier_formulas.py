"""The standalone verifier re-implements three formulas from their description (it may not
import leadflow): each must give what leadflow computes, for any input."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import leadflow_verify as lv
from adapters.audit_keys import key_id_of
from adapters.audit_log import link_for, signed_message
from domain.hash_chain import event_digest

texts = st.text(max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200)
@given(
    previous=st.binary(min_size=32, max_size=32),
    position=st.integers(1, 2**40),
    topic=texts,
    originator=st.uuids(),
    version=st.integers(1, 2**40),
    state=st.binary(max_size=200),
)
def test_a_log_link_is_leadflows(
    previous: bytes, position: int, topic: str, originator: UUID, version: int, state: bytes
) -> None:
    entry = {
        "position": position,
        "topic": topic,
        "originator_id": str(originator),
        "version": version,
    }
    assert lv.log_link(previous, entry, state) == link_for(
        previous, position, topic, originator, version, state
    )


@settings(max_examples=200)
@given(
    topic=texts,
    originator=st.uuids(),
    version=st.integers(1, 2**40),
    state=st.dictionaries(texts, json_values, max_size=6),
)
def test_an_events_own_hash_is_leadflows(
    topic: str, originator: UUID, version: int, state: dict[str, Any]
) -> None:
    entry = {"topic": topic, "originator_id": str(originator), "version": version}
    assert lv.own_hash(entry, state) == event_digest(topic, str(originator), version, state)


@settings(max_examples=50)
@given(position=st.integers(1, 2**40), link=st.binary(min_size=32, max_size=32), at=texts)
def test_a_signed_head_message_and_key_id_are_leadflows(
    position: int, link: bytes, at: str
) -> None:
    public = Ed25519PrivateKey.generate().public_key()
    key_id = key_id_of(public)
    assert lv.key_id(public) == key_id
    head = {"position": position, "key_id": key_id, "signed_at": at}
    assert lv.head_message(head, link) == signed_message(position, link, key_id, at)
