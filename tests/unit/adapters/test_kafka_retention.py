"""Topic retention settings: -1 or a positive time; a bounded topic rolls segments daily."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.kafka_retention import DAY_MS, FOREVER, THIRTY_DAYS_MS, retention_configs
from adapters.settings import KafkaSettings


def test_personal_data_topics_are_bounded_by_default() -> None:
    kafka = KafkaSettings()
    assert (
        kafka.events_retention_ms,
        kafka.qualification_retention_ms,
        kafka.engagement_retention_ms,
        kafka.dead_letter_retention_ms,
    ) == (THIRTY_DAYS_MS,) * 4


@pytest.mark.parametrize("value", [0, -2, -86_400_000])
def test_zero_and_other_negative_retentions_are_refused(value: int) -> None:
    with pytest.raises(ValidationError, match="must be -1"):
        KafkaSettings(qualification_retention_ms=value)


def test_forever_has_no_segment_roll_and_a_short_retention_rolls_at_its_own_length() -> None:
    assert retention_configs(FOREVER) == {"retention.ms": "-1"}
    assert retention_configs(THIRTY_DAYS_MS)["segment.ms"] == str(DAY_MS)
    assert retention_configs(60_000) == {"retention.ms": "60000", "segment.ms": "60000"}
