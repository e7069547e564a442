"""Projector settings (``LEADFLOW_PROJECTOR_*``), the ``projector`` section of ``Settings``."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_PROJECTOR_", extra="ignore")

    topic: str = Field(
        default="leadflow.events.v1",
        min_length=1,
        description="defaults to the relay's topic, LEADFLOW_STREAM_EVENTS_TOPIC (see Settings)",
    )
    group_id: str = Field(default="leadflow.projector", min_length=1)
    batch_size: int = Field(default=1000, ge=1, le=50_000, description="records per transaction")
    poll_timeout_ms: int = Field(default=500, ge=10)
    gather_ms: int = Field(
        default=20,
        ge=0,
        le=500,
        description="how long the broker may hold the projector's fetch to gather a larger "
        "batch (each batch costs a read-model transaction); 0: answer at once",
    )
    session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="how soon the group notices a crashed projector"
    )
    heartbeat_interval_ms: int = Field(default=2_000, ge=100)
    follow_interval_s: float = Field(
        default=0.5, gt=0, description="embedded --follow: pause between empty reads"
    )

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> ProjectorSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            msg = (
                f"heartbeat_interval_ms ({self.heartbeat_interval_ms}) must be below "
                f"session_timeout_ms ({self.session_timeout_ms})"
            )
            raise ValueError(msg)
        return self
