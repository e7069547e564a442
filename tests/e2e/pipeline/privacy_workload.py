"""One person's whole life in leadflow, as real processes, with debug logging: what the
privacy tests scan (log lines for personal values, files for their modes).

Kafka mode on a SQLite or PostgreSQL store with a signed log: ``ingest``, ``relay`` and ``project``
run throughout; the person is imported (with refused lines), engaged through
``leadflow engage`` and the engagement topic (with records that go to the dead-letter
topic), handled over HTTP by ``leadflow serve`` (with a refused command), and looked at
with every read command, exports included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.audit_keys import generate_key_pair
from adapters.audit_settings import AuditSettings
from tests.e2e.api.served import serving
from tests.e2e.cli.cli_runner import CliRun
from tests.e2e.pipeline.pipeline import Pipeline
from tests.integration.consumers.engagement_samples import Sample, encode
from tests.integration.consumers.stream_helpers import CliProcess, produce, unique

EMAIL = "quintessa.vorhees-lf13@privacy-probe.example"
UNKNOWN_EMAIL = "ysolde.marchetti-lf13@privacy-probe.example"  # never captured
FIRST_NAME = "Quintessaqx"
LAST_NAME = "Vorheeszk"
TITLE = "Chief Zeppelin Officer"
PHONE = "+49 151 98765432"
BANT = {
    "budget": "budget-zq7 4711 EUR",
    "authority": "authority Marguerite Oyelaran",
    "need": "need-xk9 cold-chain telemetry",
    "timeline": "timeline-wq3 after the merger",
}
OUTCOME = "outcome voicemail-pv8 left"
REASONS = ("reason: she asked for pv5 discount", "reason-disq tq2 wrong person")
PROPERTIES = {"note": "property-hj2 loves sailing", "utm_content": "property-mm4"}
HTTP_OUTCOME = "outcome-http rr6 called back"

PERSONAL_VALUES = (
    EMAIL,
    UNKNOWN_EMAIL,
    FIRST_NAME,
    LAST_NAME,
    TITLE,
    PHONE,
    *BANT.values(),
    OUTCOME,
    *REASONS,
    *PROPERTIES.values(),
    HTTP_OUTCOME,
)

DAY = "2026-11-0{}T09:00:00Z"


def _commands() -> list[str]:
    attributes = {
        "first_name": FIRST_NAME,
        "last_name": LAST_NAME,
        "title": TITLE,
        "phone": PHONE,
        "industry": "software",
        "employees": 120,
    }
    lines: list[dict[str, Any]] = [
        {"command": "capture_lead", "lead": EMAIL, "source": "web", "attributes": attributes},
        {"command": "log_contact", "lead": EMAIL, "channel": "call", "outcome": OUTCOME},
        {"command": "mark_mql", "lead": EMAIL, "reason": REASONS[0]},
        {"command": "accept_lead", "lead": EMAIL},
        {"command": "qualify_lead", "lead": EMAIL, "bant": BANT},
        {"command": "open_deal", "deal": "PRIV-1", "lead": EMAIL, "amount": 1000},
        {"command": "win_deal", "deal": "PRIV-1"},
        # refused: an illegal transition, an invalid field, an unknown lead
        {"command": "disqualify_lead", "lead": EMAIL, "reason": REASONS[1]},
        {"command": "log_contact", "lead": EMAIL, "channel": PHONE, "outcome": OUTCOME},
        {"command": "reject_lead", "lead": UNKNOWN_EMAIL, "reason": REASONS[1]},
    ]
    for day, line in enumerate(lines, start=1):
        line["occurred_at"] = DAY.format(min(day, 9))
    return [json.dumps(line) for line in lines] + [f"not json: {EMAIL} {PHONE}"]


def _engagement(event_id: str, kind: str = "form_submit", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "email": EMAIL,
        "kind": kind,
        "occurred_at": "2026-11-01T10:00:00Z",
        "attributes": {"title": TITLE, "employees": 120},
        "properties": PROPERTIES,
        **extra,
    }


@dataclass
class Workload:
    """Where the run left its logs and files."""

    pipeline: Pipeline
    data_dir: Path
    outside: Path  # key, witness and exports: not in the data dir
    runs: list[CliRun] = field(default_factory=list)
    processes: list[CliProcess] = field(default_factory=list)
    serve_log: Path | None = None
    reports_before_forget: tuple[Any, Any] | None = None
    reports_after_forget: tuple[Any, Any] | None = None
    erased_lead_id: str = ""  # the email finds nothing after the erasure: the lead's UUID

    def reports(self) -> tuple[Any, Any]:
        return self.pipeline.run_json("funnel"), self.pipeline.run_json("kpis")

    def run(self, *args: str) -> CliRun:
        done = self.pipeline.run(*args)
        self.runs.append(done)
        return done

    @property
    def log_files(self) -> list[Path]:
        logs = [p.log_path for p in self.processes]
        return logs + ([self.serve_log] if self.serve_log else [])


@contextmanager
def _running(pipeline: Pipeline, workload: Workload) -> Iterator[None]:
    processes = [pipeline.start(role) for role in ("ingest", "relay", "projector")]
    workload.processes += processes
    try:
        processes[0].wait_for_log("ingest_ready")
        yield
        pipeline.wait_drained(timeout=120)
    finally:
        codes = [p.terminate(timeout=30) for p in processes]
    assert codes == [0, 0, 0], codes


def _over_http(workload: Workload) -> None:
    env = workload.pipeline.env
    settings = {
        key.removeprefix("LEADFLOW_").lower(): value
        for key, value in env.items()
        if key != "LEADFLOW_DATA_DIR"
    }
    with serving(workload.data_dir, **settings) as server, server.client("sales") as sales:
        workload.serve_log = server.log
        applied = sales.post(
            f"/v1/leads/{EMAIL}/contacts", json={"channel": "email", "outcome": HTTP_OUTCOME}
        )
        assert applied.status_code == 200, applied.text
        refused = sales.post(f"/v1/leads/{EMAIL}/disqualify", json={"reason": REASONS[1]})
        assert refused.status_code == 409, refused.text
        invalid = sales.post(f"/v1/leads/{EMAIL}/contacts", json={"channel": PHONE})
        assert invalid.status_code == 422, invalid.text
        assert sales.get(f"/v1/leads/{UNKNOWN_EMAIL}").status_code == 404
        assert sales.get(f"/v1/leads/{EMAIL}").status_code == 200


def run_workload(work_dir: Path, kafka_bootstrap: str, postgres_dsn: str | None) -> Workload:
    outside = work_dir / "outside"
    outside.mkdir(parents=True)
    generate_key_pair(outside / "audit.pem")
    audit = AuditSettings(
        key_file=outside / "audit.pem", witness=outside / "witness.jsonl", topic=unique("audit")
    )
    pipeline = Pipeline(
        work_dir,
        kafka_bootstrap,
        postgres_dsn,
        extra_env={
            "LEADFLOW_LOG_LEVEL": "debug",
            "LEADFLOW_AUDIT_KEY_FILE": str(audit.key_file),
            "LEADFLOW_AUDIT_WITNESS": str(audit.witness),
            "LEADFLOW_AUDIT_TOPIC": audit.topic,
        },
    )
    pipeline.setup.settings = pipeline.settings.model_copy(update={"audit": audit})
    workload = Workload(pipeline, pipeline.settings.store.data_dir, outside)
    commands = outside / "commands.jsonl"
    commands.write_text("\n".join(_commands()) + "\n")
    engagements = outside / "engagements.jsonl"
    records = [_engagement("probe-engage-1"), _engagement("probe-engage-bad", kind="teleport")]
    engagements.write_text("\n".join(json.dumps(r) for r in records) + "\n")

    with _running(pipeline, workload):
        assert workload.run("import", str(commands)).code == 1, "refused lines exit 1"
        assert workload.run("engage", "--file", str(engagements)).code != 0
        pipeline.ensure_engagement_topic()
        samples = [
            Sample(encode(_engagement("probe-kafka-1", kind="pricing_page_view")), "valid"),
            Sample(encode(_engagement("probe-kafka-bad", kind="teleport")), "invalid_fields"),
            Sample(f"{{oops {EMAIL} {PHONE}".encode(), "not_json"),
        ]
        produce(kafka_bootstrap, pipeline.setup.stream.engagement_topic, samples)
        _over_http(workload)
    for args in (
        ("lead", "show", EMAIL),
        ("lead", "show", UNKNOWN_EMAIL),
        ("history", EMAIL),
        ("history", EMAIL, "--export", str(outside / "history.jsonl")),
        ("history", EMAIL, "--proof", str(outside / "proof.json")),
        ("verify",),
        ("funnel",),
        ("kpis",),
        ("dlq",),
        ("stream-stats",),
    ):
        workload.run(*args)
    _forget(workload)
    return workload


def _forget(workload: Workload) -> None:
    """The person asks to be erased while every process runs: the relay publishes the
    erasure, the projector applies it."""
    workload.reports_before_forget = workload.reports()
    with _running(workload.pipeline, workload):
        erased = workload.run("forget", EMAIL, "--reason", "erasure request lf13-77")
        assert erased.code == 0, erased.messages
        workload.erased_lead_id = erased.out.removeprefix("erased: lead ").split()[0]
    workload.reports_after_forget = workload.reports()
