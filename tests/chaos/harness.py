"""The chaos run: the pipeline as real processes under load, with faults injected.

``Chaos(...).run()`` does, in order:

1. starts ``leadflow ingest``, ``relay`` and ``project`` under a supervisor;
2. offers load for ``duration`` seconds: engagement records at a steady rate (with invalid,
   resent, older and out-of-partition ones) and ``leadflow import`` batches of commands;
3. meanwhile injects the seeded faults: SIGKILLs of every process, a broker outage, a
   PostgreSQL outage (when the store is PostgreSQL and the servers are the session's own);
4. lets everything drain (deadlines, not sleeps), then proves every process still answers:
   probe records must flow through all three, then each must exit 0 on SIGTERM;
5. checks what must hold (``tests.chaos.checks``) and returns the report.

The seed decides the load and when each fault strikes; the report prints it first. A
failure of the harness itself becomes a failed check, so the report is always complete.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from deploy._common import RUN_DIR
from deploy.kafka.broker import Broker
from deploy.postgres.server import PostgresServer
from tests.chaos import checks, diagnostics
from tests.chaos.checks import Check
from tests.chaos.engagement_load import EngagementLoad, EngagementPlan
from tests.chaos.faults import FaultInjector, Server, plan_faults
from tests.chaos.import_load import ImportLoad
from tests.chaos.journal import Journal
from tests.chaos.report import SEED_ENV, ChaosConfig, ChaosReport, outage_summary
from tests.chaos.supervisor import Supervisor
from tests.e2e.cli.generated_import import generate_lines
from tests.e2e.pipeline.pipeline import DrainTimeout, Pipeline, Progress

__all__ = ["SEED_ENV", "Chaos", "ChaosConfig", "ChaosReport", "chaos_seed"]

ROLES = ["ingest", "relay", "projector"]
PROBE_RECORDS = 3
KEPT_LOGS = RUN_DIR / "chaos"
"""Where a failed run's process logs and report are kept."""


def chaos_seed() -> int:
    """``LEADFLOW_CHAOS_SEED`` when set (to repeat a run), else a fresh random seed."""
    given = os.environ.get(SEED_ENV, "").strip()
    return int(given) if given else random.SystemRandom().randrange(1, 10**9)


class Chaos:
    def __init__(
        self,
        work_dir: Path,
        bootstrap: str,
        postgres_dsn: str | None,
        *,
        seed: int,
        broker: Broker | None = None,
        postgres: PostgresServer | None = None,
        config: ChaosConfig | None = None,
    ) -> None:
        self.config = config or ChaosConfig()
        self.seed = seed
        rng = random.Random(seed)
        self.journal = Journal()
        # shorter back-off than the defaults: the run is bounded and outages are short
        self.pipeline = Pipeline(
            work_dir,
            bootstrap,
            postgres_dsn,
            {
                "LEADFLOW_STREAM_RETRY_MAX_SECONDS": "2",
                "LEADFLOW_STREAM_SEND_TIMEOUT_SECONDS": "10",
                "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread's stack
            },
        )
        self.servers: dict[str, Server] = {}
        if broker is not None:
            self.servers["broker"] = broker
        if postgres is not None and postgres_dsn is not None:
            self.servers["postgres"] = postgres
        config = self.config
        self.plan = EngagementPlan(random.Random(rng.random()), config.leads)
        lines = list(generate_lines(config.import_lines, seed=rng.randrange(10**6)))
        faults = plan_faults(rng, config.duration, ROLES, config.kills_each, sorted(self.servers))
        self.supervisor = Supervisor(
            self.pipeline, ROLES, self.journal, random.Random(rng.random())
        )
        self.load = EngagementLoad(
            bootstrap,
            self.pipeline.setup.stream.engagement_topic,
            self.plan,
            config.rate,
            self.journal,
        )
        interval = config.duration * 0.7 / config.import_batches
        self.imports = ImportLoad(
            self.pipeline, lines, config.import_batches, interval, self.journal
        )
        self.injector = FaultInjector(faults, self.supervisor, self.servers, self.journal)
        self.report = ChaosReport(seed, self.pipeline.store_kind, config, faults=faults)

    def run(self) -> ChaosReport:
        started = time.monotonic()
        self.journal.note("setup", f"seed {self.seed}, {self.pipeline.store_kind} event store")
        for missing in sorted({"broker", "postgres"} - self.servers.keys()):
            self.journal.note("setup", f"no {missing} outage: not ours to stop, or not in use")
        try:
            self._offer_load()
            self._drain_and_probe()
        except Exception as error:  # noqa: BLE001 - becomes a failed check in the report
            self._failed("the run itself", error)
        finally:
            self.injector.stop()
            self.imports.stop()
            self.load.close()
            self.report.stopped = self.supervisor.stop(self.config.stop_timeout)
            self._require_servers_up()
        self._check()
        self.report.journal = self.journal.lines()
        self.report.outages = outage_summary(self.injector.outages, self.supervisor.exits, ROLES)
        exited = [e for e in self.supervisor.exits if e.cause == "exited"]
        self.report.checks.append(
            Check(
                "(e) no process gave up: every outage ridden out without an exit",
                not exited,
                "; ".join(f"{e.role} exit {e.code} at +{e.at:.1f}s: {e.last_words}" for e in exited)
                or f"{len(self.injector.outages)} outages, no exit",
            )
        )
        self.report.load = self._load_summary()
        self.report.seconds = time.monotonic() - started
        if not self.report.ok:
            self.report.logs_kept = self._keep_logs()
        return self.report

    def _keep_logs(self) -> Path:
        """Copy the processes' logs where the next test session will not delete them."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        kept = KEPT_LOGS / f"{stamp}-{self.pipeline.store_kind}-seed{self.seed}"
        shutil.copytree(self.pipeline.log_dir, kept)
        (kept / "report.txt").write_text(self.report.text() + "\n", encoding="utf-8")
        return kept

    # --- phases ----------------------------------------------------------------------

    def _offer_load(self) -> None:
        config, journal = self.config, self.journal
        self.pipeline.ensure_engagement_topic()
        self.supervisor.start()
        journal.note("load", f"offering {config.rate:g} records/s for {config.duration:g}s")
        self.load.start()
        self.imports.start()
        self.injector.start()
        time.sleep(config.duration)
        self.injector.join(timeout=120)
        self.load.finish()
        journal.note("load", f"stopped: {len(self.plan.catalog)} engagement records offered")
        if not self.imports.wait(timeout=120):
            journal.note("import", "NOT all batches imported before the deadline")
        self._require_servers_up()

    def _require_servers_up(self) -> None:
        for name, server in self.servers.items():
            if not server.is_running():
                self.journal.note("fault", f"{name} was still down: starting it")
                server.start()

    def _drain_and_probe(self) -> None:
        self.journal.note("drain", "waiting for ingest, relay and projector to catch up")
        try:
            before = self.pipeline.wait_drained(self.config.drain_timeout)
        except DrainTimeout as error:
            self._wedged("drained after the load (no process wedged)", error)
            return
        self.journal.note("drain", f"drained: {before}")
        since = self.journal.elapsed()
        for sent in self.plan.probe(PROBE_RECORDS):
            self.load.send(sent)
        self.load.finish(timeout=30)
        try:
            after = self.pipeline.wait_drained(30)
        except DrainTimeout as error:
            self._wedged("(e) every process still answers", error)
            return
        self.journal.note("drain", f"probe drained: {after}")
        self.report.checks.append(self._liveness(before, after, since))

    def _wedged(self, name: str, error: DrainTimeout) -> None:
        """Record the failure with what the pipeline looks like now: sessions, locks,
        consumer groups, the processes' last log lines and every thread's stack."""
        self.report.checks.append(Check(name, False, str(error)))
        found = self.report.diagnostics
        found += diagnostics.describe(self.pipeline)
        for role, log in self.supervisor.dump_stacks().items():
            found.append(f"--- {role}: last log lines")
            found += diagnostics.log_digest(log)
            found.append(f"--- {role}: thread stacks (SIGABRT)")
            found += diagnostics.stack_dump(log) or ["(none written)"]

    def _liveness(self, before: Progress, after: Progress, since: float) -> Check:
        moved = {
            "ingest": after.ingested - before.ingested,
            "relay": after.relayed - before.relayed,
            "projector": sum(after.projected.values()) - sum(before.projected.values()),
        }
        crashed = self.supervisor.unplanned_exits(since)
        return Check(
            f"(e) every process still answers ({PROBE_RECORDS} probe records flow through)",
            all(n > 0 for n in moved.values()) and not crashed,
            "advanced by "
            + ", ".join(f"{role} {n}" for role, n in moved.items())
            + (f"; exits during the probe: {crashed}" if crashed else ""),
        )

    # --- checks ----------------------------------------------------------------------

    def _failed(self, name: str, error: BaseException) -> None:
        detail = f"{type(error).__name__}: {' '.join(str(error).split())[:2000]}"
        self.journal.note("harness", f"FAILED: {name}: {detail}")
        self.report.checks.append(Check(name, False, detail))

    def _guarded(self, name: str, check: Callable[[], Check]) -> None:
        try:
            self.report.checks.append(check())
        except Exception as error:  # noqa: BLE001 - a check that cannot run fails
            self._failed(name, error)

    def _check(self) -> None:
        found = self.report.checks
        injector, imports = self.injector, self.imports
        found.append(
            Check(
                "faults injected as planned",
                not injector.errors and len(injector.injected) == len(injector.faults),
                f"{len(injector.injected)} of {len(injector.faults)} injected"
                + (f"; errors: {injector.errors}" if injector.errors else ""),
            )
        )
        stopped = self.report.stopped
        found.append(
            Check(
                f"(e) clean exit on SIGTERM within {self.config.stop_timeout:g}s",
                [s.code for s in stopped] == [0] * len(ROLES),
                ", ".join(f"{s.role}: exit {s.code} after {s.seconds}s" for s in stopped)
                or "nothing left to stop (stacks dumped after a wedge)",
            )
        )
        rejected = [r for o in imports.outcomes for r in o.rejections]
        found.append(
            Check(
                "every import batch went through",
                imports.finished and not rejected,
                f"{sum(o.done for o in imports.outcomes)} of {len(imports.outcomes)} batches, "
                f"{sum(o.attempts for o in imports.outcomes)} attempts"
                + (f"; rejected lines: {rejected[: checks.SHOWN]}" if rejected else ""),
            )
        )
        try:
            records = checks.engagement_records(self.pipeline, self.plan.catalog)
        except Exception as error:  # noqa: BLE001
            self._failed("reading the engagement topic", error)
            return
        pipeline, catalog = self.pipeline, self.plan.catalog
        self._guarded("load on the topic", lambda: checks.check_all_sent_arrived(records, catalog))
        self._guarded("ingest ledger", lambda: checks.check_ledger(pipeline, records))
        self._guarded("dead letters", lambda: checks.check_dead_letters(pipeline))
        with pipeline.app() as app:
            leads = self.plan.leads
            imported = imports.imported_lines()
            self._guarded("engagements", lambda: checks.check_engagements(app, records, leads))
            self._guarded("imports", lambda: checks.check_imports(app, imported))
            self._guarded("relay delivery", lambda: checks.check_relay_delivery(pipeline, app))
        self._guarded("leadflow verify", lambda: checks.check_verify(pipeline))

    def _load_summary(self) -> dict[str, int]:
        exits = Counter(f"{e.role} {e.cause}" for e in self.supervisor.exits)
        outcomes = self.imports.outcomes
        return {
            "engagement records": len(self.plan.catalog),
            **dict(self.plan.tally),
            "resent after a failed send": self.load.resent,
            "import lines": sum(o.lines for o in outcomes),
            "import attempts": sum(o.attempts for o in outcomes),
            **{f"exits: {k}": v for k, v in sorted(exits.items())},
        }
