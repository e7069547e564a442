"""Settings of the signed event log (``LEADFLOW_AUDIT_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_AUDIT_", extra="ignore")

    key_file: Path | None = Field(
        default=None,
        description="Ed25519 key (PEM, from leadflow audit keygen): the private part signs "
        "the log's head after every transaction; the public part (FILE.pub) only verifies",
    )
    witness: Path | None = Field(
        default=None,
        description="JSON Lines file every signed head is appended to; outside the data dir",
    )
    topic: str = Field(
        default="leadflow.audit.v1",
        pattern=r"^[a-zA-Z0-9._-]{1,249}$",
        description="Kafka mode: the topic the relay publishes signed heads to",
    )
