"""Poison input, version gaps and database outages never stop the projector, and never
make it silently wrong: what it cannot apply is dead-lettered with the reason."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from domain.events import LeadCaptured
from leadflow.bootstrap import open_application
from projections.catch_up import catch_up, notification_batches
from projections.projector import Item, Projector
from projections.store import PostgresStore, ReadModelStore, open_scratch_store
from service.application import LeadflowApp
from tests.integration.projections.helpers import (
    Publisher,
    apply_commands,
    assert_same_facts,
    create_topic,
    embedded_settings,
    event_store,
    new_read_model,
    projector_env,
    sharing_lead_keys,
)
from tests.integration.projections.projector_helpers import (
    ProjectorProcess,
    end_offsets,
    in_process_projector,
    wait_caught_up,
)
from tests.integration.projections.scenario import generate_commands


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[LeadflowApp]:
    _settings, app = event_store(tmp_path / "es", generate_commands(seed=3, leads=12))
    yield app
    app.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live_store(
    request: pytest.FixtureRequest, small_app: LeadflowApp, tmp_path: Path
) -> Iterator[ReadModelStore]:
    store = new_read_model(request, request.param, tmp_path, small_app.stage_model)
    yield store
    store.close()


def all_items(app: LeadflowApp) -> list[Item]:
    return [item for items in notification_batches(app, 0) for item in items]


def aggregate_of(item: Item) -> str:
    assert item.envelope is not None
    return str(item.envelope.event.originator_id)


def dead_letters(store: ReadModelStore) -> list[tuple[int, str | None, str, str]]:
    with store.read() as tx:
        return [
            (int(position), aggregate_id, error, payload)
            for position, aggregate_id, error, payload in tx.execute(
                "SELECT record_position, aggregate_id, error, payload FROM rm_dead_letters "
                "ORDER BY record_position"
            )
        ]


def test_an_event_with_a_nul_character_is_dead_lettered_and_the_rest_applied(
    small_app: LeadflowApp, live_store: ReadModelStore
) -> None:
    items = all_items(small_app)
    index, captured = next(
        (n, i)
        for n, i in enumerate(items)
        if i.envelope is not None and isinstance(i.envelope.event, LeadCaptured)
    )
    assert captured.envelope is not None
    event = captured.envelope.event
    assert isinstance(event, LeadCaptured)
    poisoned = event.model_copy(update={"external_id": f"{event.external_id}\x00evil"})
    items[index] = dataclasses.replace(
        captured, envelope=dataclasses.replace(captured.envelope, event=poisoned)
    )
    lead_id = aggregate_of(captured)
    of_lead = [i.position for i in items if aggregate_of(i) == lead_id]

    result = Projector(live_store).apply_batch("events", items, {0: items[-1].position + 1})

    assert (result.applied, result.dead_letters) == (len(items) - len(of_lead), len(of_lead))
    assert live_store.positions("events") == {0: items[-1].position + 1}
    letters = dead_letters(live_store)
    assert [position for position, *_ in letters] == of_lead
    assert {aggregate_id for _, aggregate_id, *_ in letters} == {lead_id}
    first, *later = (error for _, _, error, _ in letters)
    assert first.startswith("data error: UnstorableValue: ") and "NUL" in first
    assert all(error.startswith("gap: expected version 1, got ") for error in later)
    # the same items, batched differently, dead-letter the same way in a scratch store
    # (the rebuild `leadflow verify` compares with)
    with open_scratch_store(small_app.stage_model) as scratch:
        projector = Projector(scratch)
        for start in range(0, len(items), 7):
            chunk = items[start : start + 7]
            projector.apply_batch("events", chunk, {0: chunk[-1].position + 1})
        assert_same_facts(live_store, scratch)
        assert [p for p, *_ in dead_letters(scratch)] == of_lead


@pytest.mark.kafka
@pytest.mark.postgres
def test_a_garbage_record_with_a_nul_character_is_dead_lettered(
    small_app: LeadflowApp, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    topic = create_topic(kafka_bootstrap, partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, key=b"k\x00ey", value=b"\x00not json", partition=0).get(timeout=30)
    producer.close()
    publisher = Publisher(small_app, kafka_bootstrap, topic)
    try:
        published = publisher.publish_new()
    finally:
        publisher.close()
    model = small_app.stage_model
    with (
        PostgresStore(postgres_dsn, f"t_{uuid.uuid4().hex[:12]}", model) as store,
        open_scratch_store(model) as rebuilt,
    ):
        projector = in_process_projector(
            kafka_bootstrap, store, topic, f"g-{uuid.uuid4().hex}", small_app
        )
        stats = projector.run(until_idle=True, max_seconds=90)
        assert (stats.applied, stats.dead_letters) == (published, 1)
        assert store.positions(topic) == end_offsets(kafka_bootstrap, topic)
        [(position, aggregate_id, error, payload)] = dead_letters(store)
        assert (position, aggregate_id, payload) == (0, "k\\u0000ey", "\\u0000not json")
        assert f"record {topic}/0@0 cannot be decoded" in error
        catch_up(small_app, rebuilt)
        assert_same_facts(store, rebuilt)


def test_a_version_gap_is_held_until_a_redelivery_fills_it(small_app: LeadflowApp) -> None:
    items = all_items(small_app)
    versions: dict[str, list[Item]] = {}
    for item in items:
        versions.setdefault(aggregate_of(item), []).append(item)
    lead_id, history = next((a, h) for a, h in versions.items() if len(h) >= 4)
    missing = history[1]
    end = items[-1].position + 1
    with (
        open_scratch_store(small_app.stage_model) as store,
        open_scratch_store(small_app.stage_model) as rebuilt,
    ):
        projector = Projector(store)
        result = projector.apply_batch("events", [i for i in items if i is not missing], {0: end})
        assert result.dead_letters == len(history) - 2
        letters = [(p, error) for p, aggregate_id, error, _ in dead_letters(store)]
        assert letters == [
            (i.position, f"gap: expected version 2, got {v}")
            for v, i in enumerate(history[2:], start=3)
        ]
        with store.read() as tx:
            assert tx.execute("SELECT version FROM rm_leads WHERE lead_id = ?", (lead_id,)) == [
                (1,)
            ]
        # at-least-once delivery sends the missing version again, then the held ones
        redelivered = [dataclasses.replace(i, position=end + n) for n, i in enumerate(history[1:])]
        result = projector.apply_batch("events", redelivered, {0: end + len(redelivered)})
        assert (result.applied, result.dead_letters) == (len(history) - 1, 0)
        catch_up(small_app, rebuilt)
        assert_same_facts(store, rebuilt)


def _wait_for_log(process: ProjectorProcess, event: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not process.events(event):
        assert process.process.poll() is None, f"the projector exited: {process.log_path}"
        assert time.monotonic() < deadline, f"no {event} in {process.log_path}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
def test_the_kafka_projector_rides_out_a_postgresql_restart(
    request: pytest.FixtureRequest, kafka_bootstrap: str, postgres_dsn: str, tmp_path: Path
) -> None:
    server = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("the tests cannot restart an external PostgreSQL server")
    commands = generate_commands(seed=11, leads=60)
    half = len(commands) // 2
    settings, app = event_store(tmp_path / "es", commands[:half])
    topic = create_topic(kafka_bootstrap, partitions=4)
    publisher = Publisher(app, kafka_bootstrap, topic)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    model = app.stage_model
    env = projector_env(
        tmp_path / "projector",
        kafka_bootstrap,
        topic,
        f"g-{uuid.uuid4().hex[:8]}",
        LEADFLOW_POSTGRES_DSN=postgres_dsn,
        LEADFLOW_POSTGRES_SCHEMA=schema,
    )
    env = sharing_lead_keys(settings, env)
    PostgresStore(postgres_dsn, schema, model).close()
    projector: ProjectorProcess | None = None
    try:
        publisher.publish_new()
        projector = ProjectorProcess(env, tmp_path, "projector")
        with PostgresStore(postgres_dsn, schema, model) as store:
            wait_caught_up(store, kafka_bootstrap, topic)
        apply_commands(app, commands[half:])
        sharing_lead_keys(settings, env)  # the new leads' keys, while the server is up
        server.stop()
        try:
            publisher.publish_new()
            _wait_for_log(projector, "read_model_unavailable")
        finally:
            server.start()
        with PostgresStore(postgres_dsn, schema, model) as store:
            wait_caught_up(store, kafka_bootstrap, topic)
            assert projector.events("read_model_available_again")
            with open_scratch_store(model) as rebuilt:
                catch_up(app, rebuilt)
                assert_same_facts(store, rebuilt)
        assert projector.stop() == 0
    finally:
        if not server.is_running():
            server.start()
        if projector is not None and projector.process.poll() is None:
            projector.kill()
        publisher.close()
        app.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_the_embedded_follower_rides_out_a_postgresql_restart(
    request: pytest.FixtureRequest, postgres_dsn: str, tmp_path: Path
) -> None:
    server = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("the tests cannot restart an external PostgreSQL server")
    commands = generate_commands(seed=12, leads=40)
    half = len(commands) // 2
    settings = embedded_settings(tmp_path).with_store(
        postgres_dsn=postgres_dsn, postgres_schema=f"t_{uuid.uuid4().hex[:12]}"
    )
    app = open_application(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        LEADFLOW_DATA_DIR=str(tmp_path),
        LEADFLOW_POSTGRES_DSN=postgres_dsn,
        LEADFLOW_POSTGRES_SCHEMA=settings.store.postgres_schema,
        LEADFLOW_PROJECTOR_FOLLOW_INTERVAL_S="0.2",
        LEADFLOW_LOG_LEVEL="info",
        LEADFLOW_LOG_FORMAT="json",
    )
    model = app.stage_model
    follower: ProjectorProcess | None = None
    try:
        apply_commands(app, commands[:half])
        follower = ProjectorProcess(env, tmp_path, "follower", "--follow")
        with PostgresStore(postgres_dsn, settings.store.postgres_schema, model) as store:
            _wait_for_notification(store, app.recorder.max_notification_id() or 0)
        server.stop()
        try:
            _wait_for_log(follower, "read_model_unavailable")
        finally:
            server.start()
        app.close()
        app = open_application(settings)
        apply_commands(app, commands[half:])
        with PostgresStore(postgres_dsn, settings.store.postgres_schema, model) as store:
            _wait_for_notification(store, app.recorder.max_notification_id() or 0)
            assert follower.events("read_model_available_again")
            with open_scratch_store(model) as rebuilt:
                catch_up(app, rebuilt)
                assert_same_facts(store, rebuilt)
        assert follower.stop() == 0
    finally:
        if not server.is_running():
            server.start()
        if follower is not None and follower.process.poll() is None:
            follower.kill()
        app.close()


def _wait_for_notification(
    store: ReadModelStore, notification_id: int, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while store.last_notification_id() < notification_id:
        assert time.monotonic() < deadline, f"at {store.last_notification_id()}"
        time.sleep(0.2)
