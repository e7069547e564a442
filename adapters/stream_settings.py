"""Settings of the stream processes (``LEADFLOW_STREAM_*``): topic names, limits, timings.

Connection and security settings stay in ``adapters.settings.KafkaSettings``; topic
names are configurable so that several leadflow installations (or tests) can share
one cluster.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPIC_NAME = r"^[a-zA-Z0-9._-]{1,249}$"


class StreamSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_STREAM_", extra="ignore")

    events_topic: str = Field(default="leadflow.events.v1", pattern=TOPIC_NAME)
    qualification_topic: str = Field(default="leadflow.qualification.v1", pattern=TOPIC_NAME)
    engagement_topic: str = Field(default="leadflow.engagement.v1", pattern=TOPIC_NAME)
    dlq_topic: str = Field(default="leadflow.engagement.dlq.v1", pattern=TOPIC_NAME)
    ingest_group: str = Field(default="leadflow-engagement-ingest", min_length=1, max_length=200)

    max_record_bytes: int = Field(default=64 * 1024, ge=1, description="larger records are invalid")
    max_future: timedelta = Field(
        default=timedelta(days=1),
        description="occurred_at may lie at most this far after the wall clock at ingest",
    )

    relay_batch_size: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        description="notifications per relay page (sent, confirmed, position saved)",
    )
    relay_reader_process: bool = Field(
        default=False,
        description="read, decode and encode the relay's pages in a child process, so that "
        "sending and reading use two cores (for a busy store; one process is enough for a "
        "small one)",
    )
    relay_poll_seconds: float = Field(
        default=0.025, gt=0, description="how often the relay looks for new events on SQLite"
    )
    standby_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often a standby relay tries to take the lock"
    )
    send_timeout_seconds: float = Field(
        default=30.0, ge=2, description="how long a publish may wait for the broker's ack"
    )
    retry_max_seconds: float = Field(
        default=10.0, gt=0, description="longest back-off between reconnection attempts"
    )
    ingest_batch_size: int = Field(default=500, ge=1, le=10_000)
    ingest_gather_ms: int = Field(
        default=20,
        ge=0,
        le=500,
        description="how long the broker may hold the ingest's fetch to gather a larger "
        "batch (each batch costs a transaction and an offset commit); 0: answer at once",
    )
    ingest_session_timeout_seconds: float = Field(
        default=10.0,
        ge=1,
        description="a crashed ingest's partitions move to another member after this long",
    )
