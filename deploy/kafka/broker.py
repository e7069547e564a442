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

import argparse
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
from types import TracebackType

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from deploy._common import (
    HOST,
    RUN_DIR,
    ServerStartError,
    free_port,
    pid_alive,
    port_accepts,
    read_json,
    tail,
    wait_until,
    write_json,
)

log = structlog.get_logger(__name__)

KAFKA_DIR = Path(__file__).resolve().parent
POM = KAFKA_DIR / "pom.xml"
LIBS = KAFKA_DIR / "libs"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.xml"
JARS_STAMP = ".pom-sha256"
STATE_FILE = "broker.json"
CLI_WORK_DIR = RUN_DIR / "kafka"

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
    result = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
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
    log.info("kafka_jars_ready", jars=len(list(LIBS.glob("*.jar"))), seconds=_since(started))


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


class Broker:
    """One KRaft broker+controller on 127.0.0.1, owning ``work_dir``.

    A work dir that already holds a ``broker.json`` is reused with its ports and
    data, so ``Broker(work_dir)`` in another process controls the same broker.
    """

    def __init__(
        self,
        work_dir: Path | str | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        startup_timeout: float = 60.0,
    ) -> None:
        given = Path(work_dir).resolve() if work_dir is not None else None
        state = read_json(given / STATE_FILE) if given and (given / STATE_FILE).exists() else {}
        self.port: int = state.get("port") or port or free_port()
        self.controller_port: int = (
            state.get("controller_port") or controller_port or _other_free_port(self.port)
        )
        self.cluster_id: str = state.get("cluster_id") or new_cluster_id()
        self.work_dir = given or RUN_DIR / f"kafka-{self.port}"
        self.heap = heap
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._pid: int | None = state.get("pid")

    # paths -------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.work_dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def server_log(self) -> Path:
        return self.work_dir / "logs" / "server.log"

    @property
    def console_log(self) -> Path:
        return self.work_dir / "broker.out"

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the broker (formatting its log dir the first time) and wait until it answers."""
        if self.is_running():
            log.info("kafka_already_running", bootstrap=self.bootstrap, pid=self._pid)
            return
        started = time.monotonic()
        ensure_jars()
        java = find_java()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "logs").mkdir(exist_ok=True)
        self._write_properties()
        if not (self.data_dir / "meta.properties").exists():
            self._format(java)
        self._check_ports_free()
        self._launch(java)
        self._wait_ready(time.monotonic() + self.startup_timeout)
        log.info("kafka_started", bootstrap=self.bootstrap, pid=self._pid, seconds=_since(started))

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

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return self._live_pid() is not None

    def destroy(self) -> None:
        """Stop the broker and delete its work dir."""
        self.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return (
            f"--- {self.server_log} ---\n{tail(self.server_log, lines)}\n"
            f"--- {self.console_log} ---\n{tail(self.console_log, lines)}"
        )

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # internals ---------------------------------------------------------------------------

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
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
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

    def _check_ports_free(self) -> None:
        for port in (self.port, self.controller_port):
            if port_accepts(port):
                raise ServerStartError(
                    f"port {HOST}:{port} for the Kafka broker in {self.work_dir} is already "
                    "taken by another process"
                )

    def _launch(self, java: str) -> None:
        command = [*self._java_command(java, self.heap), "kafka.Kafka", str(self.properties_file)]
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

    def _wait_ready(self, deadline: float) -> None:
        """Wait for the listener, then for a metadata answer from an admin client."""
        wait_until(lambda: self._exited_check() or port_accepts(self.port), deadline)
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self._exited_check()
            try:
                self._probe()
                return
            except (KafkaError, OSError) as exc:
                last_error = exc
            time.sleep(0.25)
        self.kill()
        raise ServerStartError(
            f"Kafka broker {self.bootstrap} did not answer within {self.startup_timeout:.0f}s "
            f"(last error: {last_error!r})\n{self.log_tail()}"
        )

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

    def _exited_check(self) -> bool:
        """Raise with the broker log if the process has already exited; else False."""
        if self._process is not None and self._process.poll() is not None:
            code = self._process.returncode
            self._forget_process()
            raise ServerStartError(
                f"Kafka broker {self.bootstrap} exited during start-up (exit {code})\n"
                f"{self.log_tail()}"
            )
        return False

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

    def _save_state(self) -> None:
        write_json(
            self.work_dir / STATE_FILE,
            {
                "port": self.port,
                "controller_port": self.controller_port,
                "cluster_id": self.cluster_id,
                "pid": self._pid,
                "bootstrap": self.bootstrap,
            },
        )


def _other_free_port(taken: int) -> int:
    while (port := free_port()) == taken:
        pass
    return port


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from adapters.logging import configure_logging  # noqa: PLC0415 - only for the CLI

    parser = argparse.ArgumentParser(prog="python -m deploy.kafka.broker", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "jars", "destroy"])
    parser.add_argument(
        "--work-dir", type=Path, default=CLI_WORK_DIR, help=f"default: {CLI_WORK_DIR}"
    )
    parser.add_argument("--port", type=int, help="broker port for a new work dir (default: free)")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        return _run(args.command, Broker(args.work_dir, port=args.port))
    except ServerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 1


def _run(command: str, broker: Broker) -> int:
    if command == "jars":
        ensure_jars()
    elif command == "start":
        broker.start()
        print(broker.bootstrap)  # noqa: T201 - the one line scripts read
    elif command == "stop":
        broker.stop()
    elif command == "destroy":
        broker.destroy()
    elif not (broker.work_dir / STATE_FILE).exists():
        print(f"absent: no broker in {broker.work_dir}")  # noqa: T201
        return 3
    else:
        running = broker.is_running()
        state = "running" if running else "stopped"
        print(f"{state} {broker.bootstrap} {broker.work_dir}")  # noqa: T201
        return 0 if running else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
