"""A real single-node Apache Kafka broker (KRaft) for development, tests and CI.

The jars come from ``deploy/kafka/pom.xml`` via Maven (fetched once into
``deploy/kafka/libs``). Each broker lives in its own work dir holding its
``server.properties``, its log dir (``data/``), its logs and a ``broker.json``
with its ports, so the same broker can be stopped and started again::

    python -m deploy.kafka.broker start      # prints the bootstrap address
    python -m deploy.kafka.broker status
    python -m deploy.kafka.broker stop
    python -m deploy.kafka.broker jars       # only fetch the jars
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from deploy._common import (
    HOST,
    RUN_DIR,
    LocalServer,
    ServerStartError,
    free_port,
    pid_alive,
    port_accepts,
    run_cli,
    run_quietly,
    since,
    wait_until,
)

log = structlog.get_logger(__name__)

KAFKA_DIR = Path(__file__).resolve().parent
POM = KAFKA_DIR / "pom.xml"
LIBS = KAFKA_DIR / "libs"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.xml"
JARS_STAMP = ".pom-sha256"
STATE_FILE = "broker.json"

# Single node: every internal topic has one replica; fewer partitions start faster.
BROKER_DEFAULTS: dict[str, str] = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "10",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    # After a crash the controller refuses the restarted broker until the old
    # session expires (default 9 s); a short session makes crash tests quick.
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "log.cleaner.dedupe.buffer.size": "33554432",
    "num.recovery.threads.per.data.dir": "1",
}


# --- jars -------------------------------------------------------------------------------


def ensure_jars(force: bool = False) -> Path:
    """Fill ``deploy/kafka/libs`` from the pom unless it already matches the pom.

    The libs dir carries the pom's sha256; a changed pom triggers a fresh copy.
    Concurrent callers serialise on a lock held on the pom itself.
    """
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not force and _jars_match(digest):
        return LIBS
    with POM.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force or not _jars_match(digest):
            _fetch_jars(digest)
    return LIBS


def _jars_match(digest: str) -> bool:
    stamp = LIBS / JARS_STAMP
    return stamp.exists() and stamp.read_text(encoding="utf-8").strip() == digest


def _fetch_jars(digest: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerStartError("Maven (`mvn`) is not on PATH; it fetches the Kafka broker jars")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    staging = RUN_DIR / f"kafka-libs.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    log.info("kafka_jars_fetching", pom=str(POM))
    started = time.monotonic()
    result = run_quietly(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
    )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        shutil.rmtree(staging, ignore_errors=True)
        raise ServerStartError(
            f"mvn dependency:copy-dependencies failed (exit {result.returncode}):\n"
            + "\n".join(output)
        )
    (staging / JARS_STAMP).write_text(digest + "\n", encoding="utf-8")
    retired = RUN_DIR / f"kafka-libs.old-{os.getpid()}"
    if LIBS.exists():  # swap quickly: running brokers may still load jars from here
        shutil.move(LIBS, retired)
    shutil.move(staging, LIBS)
    shutil.rmtree(retired, ignore_errors=True)
    log.info("kafka_jars_ready", jars=len(list(LIBS.glob("*.jar"))), seconds=since(started))


def find_java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java`` or the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ServerStartError("Java (`java`, 17 or newer) is not on PATH; the broker needs it")
    return java


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in unpadded url-safe base64, as Kafka writes it."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like a CLI flag
            return text


# --- the broker -------------------------------------------------------------------------


class Broker(LocalServer):
    """One KRaft broker+controller on 127.0.0.1, owning ``work_dir``.

    A work dir that already holds a ``broker.json`` is reused with its ports and
    data, so ``Broker(work_dir)`` in another process controls the same broker.
    """

    log_name = "kafka"
    title = "Kafka broker"
    noun = "broker"
    state_file = STATE_FILE
    address_format = "{host}:{port}"
    port_help = "broker port for a new work dir (default: free)"
    log_names = ("logs/server.log", "broker.out")

    def __init__(
        self,
        work_dir: Path | str | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        startup_timeout: float = 60.0,
    ) -> None:
        super().__init__(work_dir, port=port, startup_timeout=startup_timeout)
        self.controller_port: int = (
            self._saved.get("controller_port") or controller_port or _other_free_port(self.port)
        )
        self.heap = heap
        self._process: subprocess.Popen[bytes] | None = None
        self._java = ""

    def _restore(self, saved: dict[str, Any]) -> None:
        self.cluster_id: str = saved.get("cluster_id") or new_cluster_id()
        self._pid: int | None = saved.get("pid")

    # paths -------------------------------------------------------------------------------

    bootstrap = LocalServer.address  # the name Kafka clients give it

    @property
    def properties_file(self) -> Path:
        return self.work_dir / "server.properties"

    @property
    def console_log(self) -> Path:
        return self.log_files[1]

    # lifecycle ---------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM), killing it if it takes longer than timeout."""
        pid = self._live_pid()
        if pid is None:
            self._forget_process()
            return
        os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("kafka_stop_timeout_killing", pid=pid, timeout=timeout)
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self._forget_process()
        log.info("kafka_stopped", bootstrap=self.bootstrap)

    def kill(self) -> None:
        """Crash the broker (SIGKILL), as a chaos test would."""
        pid = self._live_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            self._wait_exit(pid, 10.0)
        self._forget_process()

    def is_running(self) -> bool:
        return self._live_pid() is not None

    # start-up ----------------------------------------------------------------------------

    def _log_fields(self) -> dict[str, object]:
        return {"bootstrap": self.bootstrap, "pid": self._pid}

    def _ports(self) -> tuple[int, ...]:
        return (self.port, self.controller_port)

    def _prepare(self) -> None:
        """Fetch the jars, write the properties and format the log dir the first time."""
        ensure_jars()
        self._java = find_java()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(exist_ok=True)
        self._write_properties()
        if not (self.data_dir / "meta.properties").exists():
            self._format(self._java)

    def _write_properties(self) -> None:
        props = {
            **BROKER_DEFAULTS,
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}",
            "log.dirs": str(self.data_dir),
        }
        text = "".join(f"{key}={value}\n" for key, value in props.items())
        self.properties_file.write_text(
            "# Written by deploy/kafka/broker.py; rewritten on every start.\n" + text,
            encoding="utf-8",
        )
        self._save_state()

    def _format(self, java: str) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        command = [
            *self._java_command(java, heap="256m"),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            self.cluster_id,
            "-c",
            str(self.properties_file),
        ]
        result = run_quietly(command)
        if result.returncode != 0:
            raise ServerStartError(
                f"kafka StorageTool format failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        log.info("kafka_log_dir_formatted", data_dir=str(self.data_dir), cluster_id=self.cluster_id)

    def _java_command(self, java: str, heap: str) -> list[str]:
        return [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
            "-cp",
            f"{LIBS}/*",
        ]

    def _launch(self, deadline: float) -> None:
        command = [
            *self._java_command(self._java, self.heap),
            "kafka.Kafka",
            str(self.properties_file),
        ]
        with self.console_log.open("ab") as out:
            out.write(f"\n=== start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
            out.flush()
            self._process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.work_dir,
                start_new_session=True,  # a Ctrl-C in the caller's terminal does not reach it
            )
        self._pid = self._process.pid
        self._save_state()
        try:  # first the listener, then a metadata answer from an admin client
            wait_until(lambda: self._exit_code() is not None or port_accepts(self.port), deadline)
            self._wait_ready(deadline, self._probe, (KafkaError, OSError), self._exit_code)
        except ServerStartError:
            self._forget_process()
            raise

    def _probe(self) -> None:
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id="leadflow-broker-probe",
            request_timeout_ms=5000,
            bootstrap_timeout_ms=3000,
        )
        try:
            cluster = admin.describe_cluster()
            if not cluster.get("brokers"):
                raise KafkaError("broker answered, but lists no brokers yet")
        finally:
            admin.close()

    def _exit_code(self) -> int | None:
        """The exit code once the launched process has died; else None."""
        return None if self._process is None else self._process.poll()

    def _live_pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        if self._pid is not None and pid_alive(self._pid, str(self.properties_file)):
            return self._pid
        return None

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_until(
            lambda: not pid_alive(pid, str(self.properties_file)),
            time.monotonic() + timeout,
        )

    def _forget_process(self) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(1.0)  # reap the zombie
        self._process = None
        self._pid = None
        if self.work_dir.exists():
            self._save_state()

    def _state(self) -> dict[str, object]:
        return {
            "controller_port": self.controller_port,
            "cluster_id": self.cluster_id,
            "pid": self._pid,
            "bootstrap": self.bootstrap,
        }


def _other_free_port(taken: int) -> int:
    while (port := free_port()) == taken:
        pass
    return port


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    return run_cli(Broker, argv, "python -m deploy.kafka.broker", __doc__, jars=ensure_jars)


if __name__ == "__main__":
    sys.exit(main())
