"""leadflow's configuration: one ``Settings`` with a section per concern, each read from
its ``LEADFLOW_*`` environment variables when the composition root builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.audit_settings import AuditSettings
from adapters.kafka_retention import THIRTY_DAYS_MS, RetentionMs
from adapters.privacy_settings import PrivacySettings
from adapters.projector_settings import ProjectorSettings
from adapters.stream_settings import StreamSettings


class StoreSettings(BaseSettings):
    """Where events and read models live, and how events are stored (``LEADFLOW_*``).

    With no DSN, SQLite files under ``data_dir``; ``LEADFLOW_POSTGRES_DSN`` switches the
    event store, the stream's side tables and the read models to PostgreSQL.
    """

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    data_dir: Path = Path(".leadflow")
    postgres_dsn: SecretStr | None = None
    postgres_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]*$")
    stage_model_file: Path | None = None
    scoring_rules_file: Path | None = None
    cipher_key: SecretStr | None = Field(
        default=None, description="AES key (base64) for encryption of stored events at rest"
    )
    compress_events: bool = False
    snapshot_interval: int = Field(default=100, ge=0, description="0 disables snapshots")

    @property
    def dsn(self) -> str | None:
        """The PostgreSQL DSN in clear, or None on SQLite."""
        return None if self.postgres_dsn is None else self.postgres_dsn.get_secret_value()

    @property
    def sqlite_event_store(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def sqlite_read_models(self) -> Path:
        return self.data_dir / "read_models.sqlite3"


class KafkaSettings(BaseSettings):
    """Connection and topic settings for Kafka mode (``LEADFLOW_KAFKA_*``)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_KAFKA_", extra="ignore")

    bootstrap: str | None = None
    client_id: str = "leadflow"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # retention.ms of each topic leadflow creates (docs/topics.md); -1 keeps records for ever
    events_retention_ms: RetentionMs = THIRTY_DAYS_MS
    qualification_retention_ms: RetentionMs = THIRTY_DAYS_MS
    engagement_retention_ms: RetentionMs = THIRTY_DAYS_MS
    dead_letter_retention_ms: RetentionMs = THIRTY_DAYS_MS

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments shared by every kafka-python client."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, key)
            if value is not None:
                config[key] = str(value)
        return config


class LogSettings(BaseSettings):
    """``LEADFLOW_LOG_LEVEL`` and ``LEADFLOW_LOG_FORMAT``."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_LOG_", extra="ignore")

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ApiSettings(BaseSettings):
    """The HTTP API of ``leadflow serve`` (``LEADFLOW_API_*``)."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_API_", extra="ignore")

    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="larger bodies get 413")
    rate_per_second: float = Field(
        default=100.0, ge=0, description="requests per second per API key; 0 disables the limit"
    )
    rate_burst: int = Field(default=200, ge=1, description="requests a key may send at once")
    key_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a checked token is trusted before re-reading it"
    )
    max_batch: int = Field(default=500, ge=1, description="engagement records per request")
    sse_poll_seconds: float = Field(default=0.5, gt=0, description="how often /v1/events looks")


class Settings(BaseModel):
    """Everything leadflow reads from its environment, one section per concern.

    With nothing set, leadflow runs embedded: SQLite files under ``store.data_dir`` and
    projectors following the event store in-process. ``LEADFLOW_KAFKA_BOOTSTRAP``
    switches on Kafka mode. Only the composition root (``leadflow.bootstrap``) builds
    this from the environment; everything below it receives the values it needs.
    Erasure gets its settings in ``privacy`` when it lands.
    """

    store: StoreSettings = Field(default_factory=StoreSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    projector: ProjectorSettings = Field(default_factory=ProjectorSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @model_validator(mode="after")
    def _projector_follows_the_relay(self) -> Settings:
        """The projector reads the relay's events topic unless told otherwise."""
        if "topic" not in self.projector.model_fields_set:
            self.projector = self.projector.model_copy(update={"topic": self.stream.events_topic})
        return self

    @property
    def kafka_mode(self) -> bool:
        return bool(self.kafka.bootstrap)

    def with_store(self, **changes: Any) -> Settings:
        """A copy whose store section has ``changes`` (``data_dir=...``)."""
        store = StoreSettings.model_validate(self.store.model_dump() | changes)
        return self.model_copy(update={"store": store})
