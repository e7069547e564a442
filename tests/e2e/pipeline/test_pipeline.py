"""The whole pipeline as real processes: engagement records and imported commands go in,
read models come out, and Kafka mode gives exactly what embedded mode gives.

engagement topic --leadflow ingest--> event store <--leadflow import (commands)
event store --leadflow relay--> events topic --leadflow project--> read models
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli.generated_import import generate_lines
from tests.e2e.pipeline.pipeline import Pipeline
from tests.integration.consumers.engagement_samples import (
    bad_samples,
    expected_counts,
    valid_samples,
)
from tests.integration.consumers.stream_helpers import produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

IMPORT_LINES = 700
REPORTS = (("funnel",), ("kpis",), ("pipeline", "--limit", "100000"))


def reports(pipeline: Pipeline, *, embedded: bool) -> dict[str, Any]:
    return {args[0]: pipeline.run_json(*args, embedded=embedded) for args in REPORTS}


@pytest.mark.parametrize(
    "store", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_engagements_and_commands_flow_through_every_process_into_the_read_models(
    store: str, tmp_path: Path, kafka_bootstrap: str, request: pytest.FixtureRequest
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if store == "postgresql" else None
    pipeline = Pipeline(tmp_path, kafka_bootstrap, dsn)
    rng = random.Random(2026)
    samples = valid_samples(rng, 160, leads=15, prefix="e2e") + bad_samples()
    rng.shuffle(samples)
    commands = tmp_path / "commands.jsonl"
    commands.write_text("\n".join(generate_lines(IMPORT_LINES, seed=6)) + "\n")

    processes = {role: pipeline.start(role) for role in ("ingest", "relay", "projector")}
    try:
        processes["ingest"].wait_for_log("ingest_ready")
        pipeline.ensure_engagement_topic()
        produce(kafka_bootstrap, pipeline.setup.stream.engagement_topic, samples, 0)
        imported = pipeline.run("import", str(commands), "--json")
        assert imported.code == 0, imported.messages
        summary = json.loads(imported.out)
        assert (summary["applied"], summary["rejected"]) == (IMPORT_LINES, 0), summary
        drained = pipeline.wait_drained(timeout=120)
        print(f"\n{pipeline.store_kind}: drained: {drained}")
    finally:
        codes = {role: p.terminate(timeout=30) for role, p in processes.items()}
    assert codes == {"ingest": 0, "relay": 0, "projector": 0}, "SIGTERM stops each cleanly"

    stats = pipeline.run_json("stream-stats")
    [ingest] = [g for g in stats["ingest"] if g["group"] == pipeline.setup.stream.ingest_group]
    expected = expected_counts(samples)
    assert ingest["accepted"] + ingest["duplicate"] + ingest["dead_lettered"] == len(samples)
    assert {k: ingest[k] for k in expected} == expected
    assert stats["relay"] == [
        {
            "topic": pipeline.setup.stream.events_topic,
            "position": stats["latest_notification_id"],
            "behind": 0,
        }
    ]

    verified = pipeline.run("verify")
    assert verified.code == 0, verified.out + "\n".join(verified.messages)
    print(verified.lines[-1])

    kafka_mode = reports(pipeline, embedded=False)
    rebuilt = pipeline.run("rebuild", "--from-store", embedded=True)
    assert rebuilt.code == 0, rebuilt.messages
    embedded_mode = reports(pipeline, embedded=True)
    assert kafka_mode == embedded_mode

    funnel = {s["stage"]: s for s in kafka_mode["funnel"]["stages"]}
    deals = kafka_mode["funnel"]["deals"]
    print(f"funnel reached: { {k: v['reached'] for k, v in funnel.items()} }, deals: {deals}")
    assert funnel["new"]["reached"] > 15, "imported and engaged leads both reach the read model"
    assert funnel["mql"]["reached"] > 0 and funnel["sql"]["reached"] > 0
    assert deals["opened"] > 0 and kafka_mode["kpis"]["won_deals"] > 0
