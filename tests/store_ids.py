"""Lead and deal ids as a store created by these tests has them: keyed by the privacy
master key of its settings (by default the ``LEADFLOW_*`` environment's data dir)."""

from __future__ import annotations

from uuid import UUID

from adapters.settings import Settings
from leadflow.bootstrap import keyed_ids, load_settings, privacy_master_key


def lead_uuid(ref: str, settings: Settings | None = None) -> UUID:
    return keyed_ids(privacy_master_key(settings or load_settings())).lead(ref)


def deal_uuid(ref: str, settings: Settings | None = None) -> UUID:
    return keyed_ids(privacy_master_key(settings or load_settings())).deal(ref)
