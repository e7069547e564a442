"""``leadflow relay`` as real processes: SIGKILL at random points, and a hot standby."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from consumers.relay.position import RelayPosition
from tests.integration.consumers.stream_helpers import (
    REPO,
    CliProcess,
    StreamSetup,
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
    subprocess_env,
    wait_for,
)

pytestmark = pytest.mark.kafka


class Writer(threading.Thread):
    """Commands keep arriving: lead lifecycles, one after another, until stopped."""

    def __init__(self, setup: StreamSetup, tag: str) -> None:
        super().__init__(name="writer", daemon=True)
        self.app = setup.open_app("writer")
        self.tag = tag
        self.stop = threading.Event()
        self.leads = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                lifecycle(self.app, self.leads, self.tag)
                self.leads += 1
        except Exception as error:  # noqa: BLE001 - any failure is reported by finish()
            self.error = error

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=60)
        assert self.error is None, f"the writer failed: {self.error!r}"


def published(setup: StreamSetup) -> int:
    """The relay's saved position: everything up to it was acknowledged by the broker."""
    with setup.store_db() as db:
        return RelayPosition(db, setup.stream.events_topic).load()


def relay_once(setup: StreamSetup, log: Path) -> None:
    """Run ``leadflow relay --once`` to the end (publishes whatever is left)."""
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "leadflow.cli.main", "relay", "--once", "--max-seconds", "90"],
            env=subprocess_env(setup.env),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=out,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_keeps_order(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    rng = random.Random(20261122)
    writer = Writer(setup, "crash")
    writer.start()
    kills = 0
    for round_ in range(5):
        relay = CliProcess(["relay"], setup.env, tmp_path / f"relay-{round_}.log")
        if round_ % 2:
            time.sleep(rng.uniform(0.0, 1.2))  # sometimes while it is still starting
        else:
            relay.wait_for_log("relay_active")
            time.sleep(rng.uniform(0.0, 0.6))  # a random point while it publishes
        relay.kill()
        kills += 1
    writer.finish()
    relay_once(setup, tmp_path / "relay-final.log")

    stored = stored_keys(writer.app)
    records = read_topic(kafka_bootstrap, setup.stream.events_topic)
    result = check_delivery(stored, records)
    print(
        f"\n{kills} SIGKILLs, {writer.leads} lead lifecycles, {len(stored)} events stored, "
        f"{result['records']} records on the topic ({result['duplicates']} duplicates)"
    )
    writer.app.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str) -> StreamSetup:
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    return stream_setup(tmp_path, kafka_bootstrap, dsn)


def test_a_standby_takes_over_when_the_active_relay_dies(
    setup: StreamSetup, tmp_path: Path
) -> None:
    bootstrap = setup.settings.kafka.bootstrap
    assert bootstrap is not None
    app = setup.open_app("writer")
    lifecycle(app, 0)
    active = CliProcess(["relay"], setup.env, tmp_path / "active.log")
    active.wait_for_log("relay_active")
    standby = CliProcess(["relay"], setup.env, tmp_path / "standby.log")
    try:
        standby.wait_for_log("relay_standby")
        assert not standby.has_logged("relay_active")
        wait_for(lambda: published(setup) >= len(stored_keys(app)), 30, "the active relay")

        killed_at = time.monotonic()
        active.kill()
        standby.wait_for_log("relay_active", timeout=15)
        takeover = time.monotonic() - killed_at
        store = "postgres" if setup.settings.store.postgres_dsn else "sqlite"
        print(f"\n{store}: the standby took over {takeover:.2f} s after the SIGKILL")

        lifecycle(app, 1)  # published by the new active relay
        stored = stored_keys(app)
        wait_for(lambda: published(setup) >= len(stored), 30, "the new active relay")
        check_delivery(stored, read_topic(bootstrap, setup.stream.events_topic))
    finally:
        assert standby.terminate() == 0, "SIGTERM stops a relay cleanly"
        active.kill()
        app.close()
    assert standby.has_logged("relay_stopped")
