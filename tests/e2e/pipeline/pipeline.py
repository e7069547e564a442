"""One isolated leadflow pipeline run as real processes, as an operator would run it.

``leadflow ingest`` (engagement topic -> event store), ``leadflow relay`` (event store ->
events topic) and ``leadflow project`` (events topic -> read models) get their own topics,
consumer groups and store (a PostgreSQL schema, or SQLite files in a data dir) through
``LEADFLOW_*`` variables only. One-shot commands (``import``, ``verify``, reports) run
against the same store. The progress probes read what the processes wrote (ingest ledger,
relay position, projector positions) so a test can wait until everything has drained.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from kafka.errors import KafkaError

from adapters.kafka_topics import ensure_topics
from adapters.settings import Settings
from consumers.ingest.ledger import IngestCounts, IngestLedger
from consumers.relay.position import read_positions
from leadflow.bootstrap import open_application, open_read_model, open_store_db
from service.application import LeadflowApp
from tests.e2e.cli.cli_runner import CliRun
from tests.integration.consumers.stream_helpers import (
    REPO,
    CliProcess,
    StreamSetup,
    stream_setup,
    subprocess_env,
    unique,
)
from tests.integration.projections.projector_helpers import end_offsets

ROLES: dict[str, list[str]] = {
    "ingest": ["ingest"],
    "relay": ["relay"],
    "projector": ["project"],
}
"""The long-running processes of the pipeline and their ``leadflow`` arguments."""

# Errors a progress probe may meet while a server is coming back; the probe tries again.
TRANSIENT = (psycopg.Error, KafkaError, OSError)


class DrainTimeout(AssertionError):
    """A stage of the pipeline did not catch up before its deadline."""


@dataclass(frozen=True)
class Progress:
    """How far each stage has got."""

    engagement_records: int
    ingested: int
    latest_notification: int
    relayed: int
    event_records: dict[int, int]
    projected: dict[int, int]

    @property
    def ingest_done(self) -> bool:
        return self.ingested >= self.engagement_records

    @property
    def relay_done(self) -> bool:
        return self.relayed >= self.latest_notification

    @property
    def projector_done(self) -> bool:
        return self.projected == {p: end for p, end in self.event_records.items() if end}

    @property
    def done(self) -> bool:
        return self.ingest_done and self.relay_done and self.projector_done

    def lagging(self) -> str:
        parts = []
        if not self.ingest_done:
            parts.append(f"ingest judged {self.ingested} of {self.engagement_records} records")
        if not self.relay_done:
            parts.append(f"relay at {self.relayed} of {self.latest_notification} notifications")
        if not self.projector_done:
            parts.append(f"projector at {self.projected}, events topic ends {self.event_records}")
        return "; ".join(parts) or "nothing"


class Pipeline:
    """Settings, environment and probes of one pipeline; ``start`` runs a stage."""

    def __init__(
        self,
        work_dir: Path,
        bootstrap: str,
        postgres_dsn: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.setup: StreamSetup = stream_setup(work_dir, bootstrap, postgres_dsn)
        self.projector_group = unique("projector")
        self.env = {
            **self.setup.env,
            "LEADFLOW_PROJECTOR_TOPIC": self.setup.stream.events_topic,
            "LEADFLOW_PROJECTOR_GROUP_ID": self.projector_group,
            # the broker's minimum: a SIGKILLed member's partitions move on after 6 s
            "LEADFLOW_PROJECTOR_SESSION_TIMEOUT_MS": "6000",
            "LEADFLOW_PROJECTOR_HEARTBEAT_INTERVAL_MS": "1000",
            "LEADFLOW_STREAM_INGEST_SESSION_TIMEOUT_SECONDS": "6",
            **(extra_env or {}),
        }
        self.log_dir = work_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._started: dict[str, int] = {}

    @property
    def settings(self) -> Settings:
        return self.setup.settings

    @property
    def store_kind(self) -> str:
        return "sqlite" if self.settings.store.dsn is None else "postgresql"

    @property
    def bootstrap(self) -> str:
        bootstrap = self.settings.kafka.bootstrap
        assert bootstrap is not None
        return bootstrap

    @property
    def embedded_env(self) -> dict[str, str]:
        """The same stores without Kafka: what a one-laptop install runs."""
        return {k: v for k, v in self.env.items() if k != "LEADFLOW_KAFKA_BOOTSTRAP"}

    # --- processes -------------------------------------------------------------------

    def start(self, role: str) -> CliProcess:
        """A new process of ``role`` (see ROLES); each gets its own numbered log file."""
        number = self._started[role] = self._started.get(role, 0) + 1
        return CliProcess(ROLES[role], self.env, self.log_dir / f"{role}-{number}.log")

    def run(self, *args: str, embedded: bool = False, timeout: float = 180) -> CliRun:
        """``leadflow ARGS`` to completion."""
        done = subprocess.run(
            [sys.executable, "-m", "leadflow.cli.main", *args],
            env=subprocess_env(self.embedded_env if embedded else self.env),
            cwd=REPO,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return CliRun(done.returncode, done.stdout.decode(), done.stderr.decode())

    def run_json(self, *args: str, embedded: bool = False) -> Any:
        result = self.run(*args, "--json", embedded=embedded)
        assert result.code == 0, f"leadflow {' '.join(args)} failed: {result.messages}"
        return json.loads(result.out)

    def ensure_engagement_topic(self) -> None:
        kafka = self.settings.kafka
        ensure_topics(kafka, {self.setup.stream.engagement_topic: kafka.engagement_retention_ms})

    # --- probes ----------------------------------------------------------------------

    @contextmanager
    def app(self) -> Iterator[LeadflowApp]:
        app = open_application(self.settings, default_actor="test")
        try:
            yield app
        finally:
            app.close()

    def ingest_counts(self) -> IngestCounts:
        group, topic = self.setup.stream.ingest_group, self.setup.stream.engagement_topic
        with open_store_db(self.settings) as db:
            counts = IngestLedger(db).counts(group)
        return counts.get((group, topic), IngestCounts())

    def relay_position(self) -> int:
        with open_store_db(self.settings) as db:
            return read_positions(db).get(self.setup.stream.events_topic, 0)

    def latest_notification(self) -> int:
        with self.app() as app:
            return app.recorder.max_notification_id() or 0

    def projector_positions(self) -> dict[int, int]:
        with open_read_model(self.settings) as store:
            return store.positions(self.setup.stream.events_topic)

    def topic_ends(self, topic: str) -> dict[int, int]:
        return end_offsets(self.bootstrap, topic)

    def progress(self) -> Progress:
        stream = self.setup.stream
        return Progress(
            engagement_records=sum(self.topic_ends(stream.engagement_topic).values()),
            ingested=self.ingest_counts().consumed,
            latest_notification=self.latest_notification(),
            relayed=self.relay_position(),
            event_records=self.topic_ends(stream.events_topic),
            projected=self.projector_positions(),
        )

    def wait_drained(
        self, timeout: float, on_wait: Callable[[Progress], None] | None = None
    ) -> Progress:
        """Until ingest, relay and projector have caught up with everything sent so far.

        The projector can only be done once the relay is, so a progress that is done was
        read with the relay's last write already on the topic.
        """
        deadline = time.monotonic() + timeout
        last: Progress | None = None
        problem = ""
        while time.monotonic() < deadline:
            try:
                last = self.progress()
            except TRANSIENT as error:
                problem = f"{type(error).__name__}: {' '.join(str(error).split())}"
            else:
                if last.done:
                    return last
                if on_wait is not None:
                    on_wait(last)
            time.sleep(0.5)
        lagging = last.lagging() if last else f"no progress could be read ({problem})"
        raise DrainTimeout(f"not drained after {timeout:.0f} s: {lagging}")
