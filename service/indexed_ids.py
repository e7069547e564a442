"""Random lead ids found through a keyed index, so that forgetting a lead unlinks its email.

A lead's id is a random UUID (version 4) chosen when it is first captured. The store's
lead index (``adapters.lead_index``) maps HMAC-SHA256(index key, ``lead:`` + normalised
external id) to it; the index key is a sub-key of the privacy master key, so the index
holds no email and, without the key, no email can be looked up in it; lead ids hold
nothing at all. Forgetting a lead deletes its index entry: from then on its email maps to
nothing, a later capture allocates a new random id, and the erased lead is reachable by
its own UUID only. Deal ids are ``KeyedIds`` (deal refs are CRM ids, not personal).

An external id with no entry resolves to an id no lead ever has (version 8, derived from
its MAC), without writing anything: a query for a random email does not grow the index.
Capture allocates: insert-or-ignore, then read back, so two processes capturing the same
email at once get the same lead. A batch of commands inserts its captures' rows in one
transaction and reads all its leads' ids in one query.

Found ids are cached per process (bounded LRU); what is not found is not cached beyond
one batch of commands. A cached id can outlive a forget run by another process; such an
id names an erased lead, so whoever loads an erased lead under an external id asks
``is_stale``, which drops the entry and reads the index again.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Protocol
from uuid import UUID, uuid4

from service.ids import as_uuid, normalise_ref, uuid8

LEAD_INDEX_KEY_LABEL = "lead index"  # the master key's sub-key for the index's MACs
_CACHED_IDS = 4096


class LeadIndex(Protocol):
    """The store's table of ref MACs and lead ids (``adapters.lead_index``)."""

    def find(self, macs: Sequence[bytes]) -> dict[bytes, UUID]: ...

    def claim(self, rows: Sequence[tuple[bytes, UUID]]) -> None:
        """Insert the rows whose MAC has none (in one transaction)."""
        ...

    def delete(self, lead_id: UUID) -> int: ...


class IndexedIds:
    name = "keyed-index-random"

    def __init__(
        self,
        index_key: bytes,
        index: LeadIndex,
        deal: Callable[[str], UUID],
        cached: int = _CACHED_IDS,
    ) -> None:
        if len(index_key) < 16:
            raise ValueError("an index key has at least 16 bytes")
        self._key = index_key
        self._index = index
        self._deal = deal
        self._cached = cached
        self._cache: OrderedDict[bytes, UUID] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's batch: the MACs found absent
        self.mac = lru_cache(maxsize=cached)(self._mac)  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return "IndexedIds(<key>)"

    def mac(self, external_id: str) -> bytes:
        """HMAC-SHA256(index key, ``lead:`` + normalised ``external_id``), memoised."""
        return self._mac(external_id)

    def _mac(self, external_id: str) -> bytes:
        text = f"lead:{normalise_ref(external_id)}".encode()
        return hmac.digest(self._key, text, hashlib.sha256)

    def lead(self, external_id: str) -> UUID:
        mac = self.mac(external_id)
        known = self._cached_id(mac)
        if known is not None:
            return known
        if mac not in self._absent():
            found = self._index.find([mac])
            self._remember(found)
            if mac in found:
                return found[mac]
        return self._absent_id(mac)

    def new_lead(self, external_id: str) -> UUID:
        mac = self.mac(external_id)
        known = self._cached_id(mac)
        if known is not None:
            return known
        self._index.claim([(mac, uuid4())])
        claimed = self._index.find([mac])  # whichever process claimed it first
        self._remember(claimed)
        self._absent().discard(mac)
        return claimed[mac]

    def deal(self, external_id: str) -> UUID:
        return self._deal(external_id)

    @contextmanager
    def batch(self, leads: Iterable[str], captured: Iterable[str]) -> Iterator[None]:
        claims = {self.mac(ref) for ref in captured if as_uuid(ref) is None}
        wanted = claims | {self.mac(ref) for ref in leads}
        unknown = sorted(m for m in wanted if self._cached_id(m) is None)
        if new := [(m, uuid4()) for m in unknown if m in claims]:
            self._index.claim(new)  # then read back with the others: one query
        found = self._index.find(unknown) if unknown else {}
        self._remember(found)
        outer = getattr(self._local, "absent", None)
        self._local.absent = set(unknown) - found.keys()
        try:
            yield
        finally:
            self._local.absent = outer

    def is_stale(self, external_id: str, lead_id: UUID) -> bool:
        if as_uuid(external_id) is not None:
            return False  # a UUID ref names the lead's own id
        mac = self.mac(external_id)
        with self._lock:
            if self._cache.get(mac) == lead_id:
                del self._cache[mac]
        found = self._index.find([mac])
        self._remember(found)
        if mac not in found:
            self._absent().add(mac)
        return found.get(mac) != lead_id

    def forget_lead(self, lead_id: UUID) -> bool:
        deleted = self._index.delete(lead_id)
        with self._lock:
            for mac in [m for m, i in self._cache.items() if i == lead_id]:
                del self._cache[mac]
        return deleted > 0

    def _absent(self) -> set[bytes]:
        """The current batch's MACs found without an entry (outside a batch: none)."""
        absent: set[bytes] | None = getattr(self._local, "absent", None)
        return set() if absent is None else absent

    def _absent_id(self, mac: bytes) -> UUID:
        """An id no lead has: random lead ids are version 4, this is version 8."""
        return uuid8(hmac.digest(self._key, b"absent:" + mac, hashlib.sha256))

    def _cached_id(self, mac: bytes) -> UUID | None:
        with self._lock:
            known = self._cache.get(mac)
            if known is not None:
                self._cache.move_to_end(mac)
            return known

    def _remember(self, found: dict[bytes, UUID]) -> None:
        with self._lock:
            for mac, lead_id in found.items():
                self._cache[mac] = lead_id
                self._cache.move_to_end(mac)
            while len(self._cache) > self._cached:
                self._cache.popitem(last=False)
