"""Kafka mode against the real broker: the same read model as embedded mode, shared
partitions across projector processes, and SIGKILLed projectors that lose nothing."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from kafka import KafkaProducer

from adapters.event_envelope import envelope_from_notification
from adapters.mapper import PydanticMapper
from consumers.contracts.events_topic import to_kafka_record
from consumers.projection.kafka import GATHER_BYTES, gathering
from projections.catch_up import catch_up
from projections.store import PostgresStore, ReadModelStore, SqliteStore, open_scratch_store
from projections.verify import verify_read_model
from tests.integration.projections.conftest import Scenario
from tests.integration.projections.helpers import (
    Publisher,
    apply_commands,
    assert_same_facts,
    create_topic,
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

pytestmark = pytest.mark.kafka


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    return create_topic(kafka_bootstrap, partitions=4)


@pytest.fixture
def processes() -> Iterator[list[ProjectorProcess]]:
    started: list[ProjectorProcess] = []
    yield started
    for proc in started:
        if proc.process.poll() is None:
            proc.kill()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_kafka_and_embedded_modes_build_identical_read_models(
    request: pytest.FixtureRequest,
    scenario: Scenario,
    kafka_bootstrap: str,
    topic: str,
    tmp_path: Path,
    kind: str,
) -> None:
    publisher = Publisher(scenario.app, kafka_bootstrap, topic)
    try:
        publisher.publish_new(duplicate_every=7)  # at-least-once: some records twice
    finally:
        publisher.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, key=b"junk", value=b"{not an event", partition=1).get(timeout=30)
    producer.close()
    model = scenario.app.stage_model
    store = new_read_model(request, kind, tmp_path, model)
    with store, open_scratch_store(model) as embedded:
        stats = in_process_projector(
            kafka_bootstrap, store, topic, f"g-{uuid.uuid4().hex[:8]}", scenario.app
        ).run(until_idle=True, max_seconds=90)
        catch_up(scenario.app, embedded)
        assert stats.applied == scenario.events
        assert stats.duplicates > 0 and stats.dead_letters == 1
        assert_same_facts(store, embedded)
        assert store.positions(topic) == end_offsets(kafka_bootstrap, topic)
        with store.read() as tx:
            [(_position, error)] = tx.execute("SELECT record_position, error FROM rm_dead_letters")
        assert "cannot be decoded" in error
        # a second run (a restart) starts at the stored positions: nothing more to apply
        again = in_process_projector(
            kafka_bootstrap, store, topic, f"g-{uuid.uuid4().hex[:8]}", scenario.app
        )
        assert again.run(until_idle=True, max_seconds=60).records == 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_projector_processes_in_one_group_equal_one(
    request: pytest.FixtureRequest,
    scenario: Scenario,
    kafka_bootstrap: str,
    topic: str,
    tmp_path: Path,
    processes: list[ProjectorProcess],
    kind: str,
) -> None:
    model = scenario.app.stage_model

    def read_model(name: str) -> tuple[dict[str, str], ReadModelStore]:
        """Environment for projector processes writing into read model ``name``, and it."""
        if kind == "sqlite":
            return {}, SqliteStore(tmp_path / name / "read_models.sqlite3", model)
        dsn, schema = request.getfixturevalue("postgres_dsn"), f"t_{uuid.uuid4().hex[:12]}"
        env = {"LEADFLOW_POSTGRES_DSN": dsn, "LEADFLOW_POSTGRES_SCHEMA": schema}
        return env, PostgresStore(dsn, schema, model)

    pair_env, pair_store = read_model("pair")
    alone_env, alone_store = read_model("alone")
    group = f"pair-{uuid.uuid4().hex[:8]}"
    env = sharing_lead_keys(
        scenario.settings,
        projector_env(tmp_path / "pair", kafka_bootstrap, topic, group, **pair_env),
    )
    processes += [
        ProjectorProcess(env, tmp_path, f"pair{n}", "--max-seconds", "240") for n in (1, 2)
    ]
    wait_until_consuming(processes)
    publisher = Publisher(scenario.app, kafka_bootstrap, topic)
    try:
        publisher.publish_new()
    finally:
        publisher.close()
    with pair_store, alone_store, open_scratch_store(model) as rebuilt:
        wait_caught_up(pair_store, kafka_bootstrap, topic)
        assert [p.stop() for p in processes] == [0, 0]
        applied = [sum(e["applied"] for e in p.events("projector_stopped")) for p in processes]
        assert all(applied) and sum(applied) == scenario.events  # both did part of the work
        alone = ProjectorProcess(
            sharing_lead_keys(
                scenario.settings,
                projector_env(
                    tmp_path / "alone",
                    kafka_bootstrap,
                    topic,
                    f"alone-{uuid.uuid4().hex[:8]}",
                    **alone_env,
                ),
            ),
            tmp_path,
            "alone",
            "--until-idle",
            "--max-seconds",
            "120",
        )
        assert alone.wait(timeout=150) == 0
        assert_same_facts(pair_store, alone_store)
        catch_up(scenario.app, rebuilt)
        assert_same_facts(pair_store, rebuilt)


def wait_until_consuming(processes: list[ProjectorProcess], partitions: int = 4) -> None:
    """Until the group has settled with the partitions split between all processes."""
    deadline = time.monotonic() + 60
    while sorted(len(p.partitions()) for p in processes) != _split(partitions, len(processes)):
        assert time.monotonic() < deadline, "the group never split the partitions between all"
        time.sleep(0.2)


def _split(partitions: int, members: int) -> list[int]:
    return sorted(
        partitions // members + (1 if i < partitions % members else 0) for i in range(members)
    )


@pytest.mark.slow
def test_sigkilled_projectors_lose_nothing_while_commands_keep_arriving(
    kafka_bootstrap: str, topic: str, tmp_path: Path, processes: list[ProjectorProcess]
) -> None:
    rng = random.Random(11)
    commands = generate_commands(seed=11, leads=250)
    chunks = [commands[i : i + 120] for i in range(0, len(commands), 120)]
    kill_after = set(rng.sample(range(1, len(chunks)), 5))
    settings, app = event_store(tmp_path / "events")
    read_models = tmp_path / "read_models"
    env = projector_env(
        read_models,
        kafka_bootstrap,
        topic,
        f"chaos-{uuid.uuid4().hex[:8]}",
        LEADFLOW_PROJECTOR_BATCH_SIZE="25",  # many transactions: kills land mid-stream
        LEADFLOW_LOG_LEVEL="debug",
    )
    env = sharing_lead_keys(settings, env)
    start = lambda n: ProjectorProcess(env, tmp_path, f"p{n}", "--max-seconds", "300")  # noqa: E731
    running = [start(1), start(2)]
    processes += running
    publisher = Publisher(app, kafka_bootstrap, topic)
    killed: list[ProjectorProcess] = []
    try:
        for number, chunk in enumerate(chunks):
            if number in kill_after:
                wait_until_consuming(running)  # the victim owns partitions ...
            apply_commands(app, chunk)
            sharing_lead_keys(settings, env)  # the new leads' keys
            publisher.publish_new(duplicate_every=11)
            if number not in kill_after:
                time.sleep(rng.uniform(0.05, 0.4))
                continue
            time.sleep(rng.uniform(0.0, 0.15))  # ... and is most likely busy with them
            victim = rng.randrange(len(running))
            running[victim].kill()
            killed.append(running[victim])
            time.sleep(rng.uniform(0.0, 1.0))
            running[victim] = start(len(killed) + 2)
            processes.append(running[victim])
        with SqliteStore(read_models / "read_models.sqlite3", app.stage_model) as live:
            wait_until_consuming(running)
            wait_caught_up(live, kafka_bootstrap, topic, timeout=180)
            assert [p.stop() for p in running] == [0, 0]
            assert len(killed) == 5
            assert sum(1 for p in killed if p.events("batch_applied")) >= 2
            with open_scratch_store(app.stage_model) as rebuilt:
                catch_up(app, rebuilt)
                assert_same_facts(live, rebuilt)
            verification = verify_read_model(app, live)
            assert verification.ok, verification
    finally:
        publisher.close()
        app.close()


@pytest.mark.parametrize(
    ("kind", "gather_ms"),
    [
        ("sqlite", 0),
        ("sqlite", 50),
        pytest.param("postgresql", 50, marks=pytest.mark.postgres),
    ],
)
def test_a_trickle_gathered_into_batches_builds_the_same_read_model(
    request: pytest.FixtureRequest,
    scenario: Scenario,
    kafka_bootstrap: str,
    topic: str,
    tmp_path: Path,
    kind: str,
    gather_ms: int,
) -> None:
    """Records sent one at a time while the projector runs: whether the broker answers its
    fetch at once or holds it to gather a batch, every event is applied, once, in order."""
    mapper = cast(PydanticMapper, scenario.app.mapper)
    notifications = scenario.app.recorder.select_notifications(start=1, limit=400)
    records = [to_kafka_record(envelope_from_notification(mapper, n)) for n in notifications]

    def trickle() -> None:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        try:
            for record in records:
                producer.send(
                    topic, key=record.key, value=record.value, headers=record.headers
                ).get(timeout=30)
        finally:
            producer.close()

    model = scenario.app.stage_model
    store = new_read_model(request, kind, tmp_path, model)
    sender = threading.Thread(target=trickle)
    with store, open_scratch_store(model) as embedded:
        projector = in_process_projector(
            kafka_bootstrap, store, topic, f"g-{uuid.uuid4().hex[:8]}", scenario.app
        )
        projector.options = projector.options.model_copy(update={"gather_ms": gather_ms})
        sender.start()
        stats = projector.run(
            should_stop=lambda: sum(store.positions(topic).values()) >= len(records),
            max_seconds=120,
        )
        sender.join()
        catch_up(scenario.app, embedded, until=notifications[-1].id)
        assert stats.applied == len(records) and stats.dead_letters == 0
        assert_same_facts(store, embedded)


def test_the_projector_gathers_only_when_asked() -> None:
    assert gathering(0) == {"fetch_min_bytes": 1}
    assert gathering(20) == {"fetch_min_bytes": GATHER_BYTES, "fetch_max_wait_ms": 20}
