"""Settings for tests, built as the composition root builds them: the ``LEADFLOW_*``
environment, with the test's own store section (and Kafka or stream fields, when given)
on top."""

from __future__ import annotations

from typing import Any

from adapters.settings import Settings
from leadflow.bootstrap import load_settings


def settings_with(
    *, kafka: dict[str, Any] | None = None, stream: dict[str, Any] | None = None, **store: Any
) -> Settings:
    """``store`` replaces fields of the store section (``data_dir=``, ``postgres_dsn=``...),
    ``kafka`` and ``stream`` fields of those sections. Without ``postgres_dsn`` the store
    is SQLite, even when ``LEADFLOW_POSTGRES_DSN`` names the shared test server."""
    settings = load_settings().with_store(**{"postgres_dsn": None, **store})
    sections: dict[str, Any] = {}
    if kafka is not None:
        sections["kafka"] = settings.kafka.model_copy(update=kafka)
    if stream is not None:
        sections["stream"] = settings.stream.model_copy(update=stream)
    return settings.model_copy(update=sections)
