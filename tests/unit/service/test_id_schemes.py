"""Id schemes: keyed ids are version 8 UUIDs that nobody derives without the key."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

from hypothesis import given, settings
from hypothesis import strategies as st

from service.ids import KeyedIds, Uuid5Ids, normalise_ref

KEY, OTHER_KEY = bytes(range(32)), bytes(range(1, 33))
refs = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
).filter(lambda ref: ref.strip() != "")


@settings(max_examples=50, deadline=None)
@given(ref=refs)
def test_a_keyed_id_is_version_8_and_unlike_any_other_derivation(ref: str) -> None:
    keyed, other = KeyedIds(KEY), KeyedIds(OTHER_KEY)

    lead = keyed.lead(ref)

    assert (lead.version, lead.variant) == (8, "specified in RFC 4122")
    assert lead == KeyedIds(KEY).lead(ref)  # stable: the same lead on every start
    assert lead not in {keyed.deal(ref), other.lead(ref), Uuid5Ids().lead(ref)}
    namespace = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")
    assert lead != uuid5(namespace, f"lead:{normalise_ref(ref)}")


def test_refs_that_compare_equal_give_one_id() -> None:
    keyed = KeyedIds(KEY)
    assert keyed.lead("Ada@Example.com") == keyed.lead("ada@example.com")


def test_the_uuid5_scheme_is_the_one_older_stores_used() -> None:
    namespace = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")
    assert Uuid5Ids().deal("D-1") == uuid5(namespace, "deal:D-1")


def test_the_key_does_not_show_in_the_repr() -> None:
    assert KEY.hex() not in repr(KeyedIds(KEY))
