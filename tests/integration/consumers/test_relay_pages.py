"""Publishing page by page (the next page read while the broker confirms the last) puts
exactly the records of a single-page run on both topics, in order, each once."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from consumers.relay.position import RelayPosition
from tests.integration.consumers.stream_helpers import (
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
    unique,
)

pytestmark = pytest.mark.kafka


def by_partition(records: list[Any]) -> dict[int, list[tuple[bytes, bytes, list[Any]]]]:
    found: dict[int, list[tuple[bytes, bytes, list[Any]]]] = defaultdict(list)
    for r in records:
        found[r.partition].append((r.key, r.value, list(r.headers)))
    return dict(found)


def test_small_pages_publish_what_one_page_does(tmp_path: Path, kafka_bootstrap: str) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    writer = setup.open_app("writer")
    for n in range(8):
        lifecycle(writer, n)
    stored = stored_keys(writer)

    paged = setup.stream.model_copy(update={"relay_batch_size": 7})
    whole = setup.stream.model_copy(
        update={
            "events_topic": unique("events-whole"),
            "qualification_topic": unique("qualification-whole"),
        }
    )
    relay = setup.relay(setup.open_app("paged"), stream=paged)
    stats = relay.run(once=True, max_seconds=60)
    assert stats.published == len(stored)
    assert stats.batches == -(-len(stored) // 7)
    setup.relay(setup.open_app("whole"), stream=whole).run(once=True, max_seconds=60)

    events = read_topic(kafka_bootstrap, paged.events_topic)
    assert check_delivery(stored, events) == {"records": len(stored), "duplicates": 0}
    assert by_partition(events) == by_partition(read_topic(kafka_bootstrap, whole.events_topic))
    public = read_topic(kafka_bootstrap, paged.qualification_topic)
    assert len(public) == stats.public > 0
    assert by_partition(public) == by_partition(
        read_topic(kafka_bootstrap, whole.qualification_topic)
    )
    with setup.store_db() as db:
        assert RelayPosition(db, paged.events_topic).load() == len(stored)
    writer.close()
