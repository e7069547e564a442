"""Runtime configuration, read from ``LEADFLOW_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    retention_ms: int = Field(default=-1, description="-1 keeps records forever")

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


class Settings(BaseSettings):
    """Everything leadflow reads from its environment.

    With nothing set, leadflow runs embedded: SQLite files under ``data_dir`` and
    projectors following the event store in-process. ``LEADFLOW_KAFKA_BOOTSTRAP``
    switches on Kafka mode; ``LEADFLOW_POSTGRES_DSN`` switches the stores to PostgreSQL.
    """

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    data_dir: Path = Path(".leadflow")
    postgres_dsn: SecretStr | None = None
    postgres_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]*$")
    stage_model_file: Path | None = None
    scoring_rules_file: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    cipher_key: SecretStr | None = Field(
        default=None, description="AES key (base64) for encryption of stored events at rest"
    )
    compress_events: bool = False
    snapshot_interval: int = Field(default=100, ge=0, description="0 disables snapshots")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @property
    def kafka_mode(self) -> bool:
        return bool(self.kafka.bootstrap)

    @property
    def sqlite_event_store(self) -> Path:
        return self.data_dir / "events.sqlite3"

    @property
    def sqlite_read_models(self) -> Path:
        return self.data_dir / "read_models.sqlite3"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with explicit overrides taking precedence."""
    return Settings(**overrides)
