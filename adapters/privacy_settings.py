"""Settings of privacy (``LEADFLOW_PRIVACY_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PrivacySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_PRIVACY_", extra="ignore")

    master_key_file: Path | None = Field(
        default=None,
        description="the privacy master key (see adapters.privacy_keys); unset, the data "
        "directory's privacy-master.key, created on first start",
    )
