"""The signed log's parts as the settings choose them: the audit key and the witness."""

from __future__ import annotations

from pathlib import Path

from adapters.audit_keys import KEY_SETTING, load_audit_key
from adapters.audit_log import AuditConfig
from adapters.audit_settings import AuditSettings
from adapters.audit_witness import WITNESS_SETTING, FileWitness
from adapters.event_store import StoreSettingsError


def audit_config(audit: AuditSettings, data_dir: Path) -> AuditConfig:
    """The key and witness ``audit`` names, checked: StoreSettingsError, naming the
    setting, for an unreadable key, a witness without a key, or a witness inside the
    data directory (a copy of the data directory would carry its own witness)."""
    key = None if audit.key_file is None else load_audit_key(audit.key_file.expanduser())
    if audit.witness is None:
        return AuditConfig(key, None)
    witness = audit.witness.expanduser().resolve()
    if key is None:
        msg = f"{WITNESS_SETTING} is set but {KEY_SETTING} is not: only signed heads are witnessed"
        raise StoreSettingsError(msg)
    data = data_dir.expanduser().resolve()
    if witness == data or data in witness.parents:
        msg = (
            f"{WITNESS_SETTING}: {witness} is inside the data directory {data}; the witness "
            "must live elsewhere, so that a copy or rollback of the store does not carry it"
        )
        raise StoreSettingsError(msg)
    if not witness.parent.is_dir():
        msg = f"{WITNESS_SETTING}: directory {witness.parent} does not exist"
        raise StoreSettingsError(msg)
    return AuditConfig(key, FileWitness(witness))
