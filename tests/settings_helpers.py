"""Settings for tests, built as the composition root builds them: the ``LEADFLOW_*``
environment, with the test's own store section (and Kafka section, when given) on top."""

from __future__ import annotations

from typing import Any

from adapters.settings import KafkaSettings, Settings
from leadflow.bootstrap import load_settings


def settings_with(*, kafka: KafkaSettings | None = None, **store: Any) -> Settings:
    """``store`` replaces fields of the store section (``data_dir=``, ``postgres_dsn=``...)."""
    settings = load_settings().with_store(**store)
    return settings if kafka is None else settings.model_copy(update={"kafka": kafka})
