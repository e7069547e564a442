"""What the integrity check infers from stored bytes, and how a cipher key is checked and
named: a JSON object is plain, zlib of one is compressed, AES-GCM of either is neither;
a key's fingerprint never shows the key."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from adapters.event_store import StoreSettingsError, cipher_key_bytes, key_fingerprint
from adapters.settings import StoreSettings
from adapters.store_integrity import stored_form

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
states = st.dictionaries(st.text(max_size=12), json_values, max_size=6)
keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


def _encoded(state: dict[str, Any]) -> bytes:
    return json.dumps(state, ensure_ascii=False).encode()


def _cipher(key: bytes) -> AESCipher:
    return AESCipher(Environment(env={"CIPHER_KEY": base64.b64encode(key).decode()}))


@given(states)
def test_plain_and_compressed_states_are_recognised(state: dict[str, Any]) -> None:
    assert stored_form(_encoded(state)) == "json"
    assert stored_form(zlib.compress(_encoded(state))) == "zlib"


@given(states, keys, st.booleans())
def test_encrypted_states_are_neither(state: dict[str, Any], key: bytes, compress: bool) -> None:
    data = zlib.compress(_encoded(state)) if compress else _encoded(state)
    assert stored_form(_cipher(key).encrypt(data)) is None


@given(st.binary())
def test_any_bytes_are_classified_without_error(data: bytes) -> None:
    assert stored_form(data) in ("json", "zlib", None)


@given(keys)
def test_a_valid_key_is_accepted_and_its_fingerprint_hides_it(key: bytes) -> None:
    text = base64.b64encode(key).decode()
    store = StoreSettings(cipher_key=SecretStr(f" {text}\n"))
    assert cipher_key_bytes(store) == key
    fingerprint = key_fingerprint(key)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert fingerprint not in key.hex()
    assert key_fingerprint(key) == fingerprint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "LEADFLOW_CIPHER_KEY is not valid base64"),
        ("YWJj", "LEADFLOW_CIPHER_KEY decodes to 3 bytes; an AES key has 16, 24 or 32 bytes"),
        (base64.b64encode(bytes(17)).decode(), "LEADFLOW_CIPHER_KEY decodes to 17 bytes"),
    ],
)
def test_a_malformed_key_names_the_variable_and_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(StoreSettingsError) as refused:
        cipher_key_bytes(StoreSettings(cipher_key=SecretStr(text)))
    assert str(refused.value).startswith(message)
    assert text not in str(refused.value)
