"""Lead and deal ids as a store created by these tests has them (by default the
``LEADFLOW_*`` environment's store): a lead's id is random, read from the store's lead
index (the lead must be captured; the store is not opened, so a damaged one will do); a
deal's is keyed by the privacy master key."""

from __future__ import annotations

from uuid import UUID

from adapters.lead_index import StoredLeadIndex
from adapters.settings import Settings
from leadflow.bootstrap import keyed_ids, load_settings, privacy_master_key
from service.indexed_ids import LEAD_INDEX_KEY_LABEL, IndexedIds


def lead_uuid(ref: str, settings: Settings | None = None) -> UUID:
    settings = settings or load_settings()
    master = privacy_master_key(settings)
    index = StoredLeadIndex(settings.store)
    try:
        ids = IndexedIds(master.derive(LEAD_INDEX_KEY_LABEL), index, keyed_ids(master).deal)
        found = index.find([ids.mac(ref)])
    finally:
        index.close()
    assert found, f"no lead {ref!r} is in the store's lead index"
    return next(iter(found.values()))


def deal_uuid(ref: str, settings: Settings | None = None) -> UUID:
    return keyed_ids(privacy_master_key(settings or load_settings())).deal(ref)
