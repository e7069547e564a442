"""Fencing: every activation takes a newer epoch; a relay deposed while it did not know
(cut off from PostgreSQL, its lock gone) cannot save its position nor publish after
its successor started, and every record names the epoch that published it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from consumers.relay.lock import PostgresRelayLock
from consumers.relay.position import RelayFenced, RelayPosition
from tests.integration.consumers.relay_helpers import caught_up, end_lock_session, running_relay
from tests.integration.consumers.stream_helpers import (
    StreamSetup,
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
    wait_for,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> StreamSetup:
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    return stream_setup(tmp_path, "127.0.0.1:9", dsn)  # no broker needed


def test_a_save_under_a_superseded_epoch_fails(setup: StreamSetup) -> None:
    with setup.store_db() as first_db, setup.store_db() as second_db:
        first = RelayPosition(first_db, "events")
        assert first.take_epoch() == 1
        first.save(5)
        second = RelayPosition(second_db, "events")
        assert second.take_epoch() == 2
        with pytest.raises(RelayFenced, match="epoch 1 was superseded by epoch 2"):
            first.save(9)
        with pytest.raises(RelayFenced):
            first.check_epoch()
        assert second.load() == 5
        second.save(9)
        second.check_epoch()
        assert first.load() == 9


class UnawareLock(PostgresRelayLock):
    """A relay's lock as it looks while the relay is cut off from PostgreSQL: held, as far
    as it knows, until TCP keepalives tell (about 11 s), or until it lets go."""

    unaware = True

    def still_held(self) -> bool:
        return self.unaware or super().still_held()

    def release(self) -> None:
        self.unaware = False
        super().release()


def epochs_by_partition(records: list[Any]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        found[record.partition].append(int(dict(record.headers)["relay_epoch"]))
    return dict(found)


@pytest.mark.kafka
@pytest.mark.postgres
def test_a_deposed_relay_publishes_nothing_after_its_successor_starts(
    tmp_path: Path,
    kafka_bootstrap: str,
    postgres_dsn: str,
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap, postgres_dsn)
    schema = setup.settings.store.postgres_schema
    writer = setup.open_app("writer")
    lifecycle(writer, 0)
    with running_relay(setup, UnawareLock(postgres_dsn, schema)) as deposed:
        wait_for(lambda: caught_up(deposed, writer), 30, "the first relay to publish")
        assert deposed.stats.epoch == 1
        # cut off: its lock session ends, but it does not know
        assert end_lock_session(postgres_dsn, schema) == [(True,)]
        with running_relay(setup) as successor:
            wait_for(lambda: successor.stats.activations == 1, 30, "the successor to start")
            published_before = deposed.stats.published
            lifecycle(writer, 1)
            lifecycle(writer, 2)
            wait_for(lambda: caught_up(successor, writer), 30, "the successor to publish")
            wait_for(lambda: deposed.stats.lock_losses >= 1, 30, "the deposed relay to stop")
            # read while the successor holds the lock: once it stops, the deposed relay,
            # a standby now, may take over again and catch up
            deposed_after, successor_after = replace(deposed.stats), replace(successor.stats)
    assert successor_after.epoch == 2
    assert deposed_after.published == published_before, "nothing after the successor started"
    assert deposed_after.position < successor_after.position

    stored = stored_keys(writer)
    for topic in (setup.stream.events_topic, setup.stream.qualification_topic):
        records = read_topic(kafka_bootstrap, topic)
        by_partition = epochs_by_partition(records)
        assert all(epochs == sorted(epochs) for epochs in by_partition.values()), by_partition
        assert {e for epochs in by_partition.values() for e in epochs} == {1, 2}
    events = read_topic(kafka_bootstrap, setup.stream.events_topic)
    assert check_delivery(stored, events)["duplicates"] == 0
    writer.close()
