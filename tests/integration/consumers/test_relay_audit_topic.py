"""Kafka mode with a signed log: the relay publishes the signed heads it reaches to the
audit topic, and verify checks the store against the latest head there (a truncated
store is reported naming the topic's head; a record there that is not a head is named;
a store whose chain was emptied is refused while the topic holds heads)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer

from adapters.audit_topic import RECORD_KEY, latest_head_on_topic
from adapters.store_integrity import StoreTampered
from domain import commands as c
from leadflow.bootstrap import verify_signed_log
from tests.integration.consumers.stream_helpers import signed, stream_setup

pytestmark = pytest.mark.kafka

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_the_relay_witnesses_heads_on_the_audit_topic_and_verify_reads_them(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    audit = signed(setup, tmp_path_factory.mktemp("keys"))
    app = setup.open_app()
    try:
        for lead in ("ada@example.com", "bob@example.com"):
            app.handle(c.CaptureLead(lead=lead, source="web", occurred_at=T0))
        setup.relay(app).run(once=True)
        last = app.recorder.max_notification_id()

        head = latest_head_on_topic(setup.settings.kafka, audit.topic)
        intact = verify_signed_log(setup.settings, app)
        with setup.store_db() as db:
            for table in ("leadflow_log_chain", "leadflow_signed_heads"):
                db.execute("DELETE FROM {t} WHERE position > 2", t=table)
            db.execute("DELETE FROM {t} WHERE rowid > 2", t="stored_events")
        truncated = verify_signed_log(setup.settings, app)
    finally:
        app.close()

    assert head is not None
    assert head.position == last
    assert intact.ok, intact.problems
    assert intact.signed_up_to == last
    assert not truncated.ok
    assert f"head witnessed on {audit.topic} at notification {last}" in str(truncated.problems[0])


def test_a_record_on_the_audit_topic_that_is_not_a_head_is_named_never_a_crash(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    audit = signed(setup, tmp_path_factory.mktemp("keys"))
    app = setup.open_app()
    try:
        app.handle(c.CaptureLead(lead="ada@example.com", source="web", occurred_at=T0))
        setup.relay(app).run(once=True)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        value = b'{"position": 1e400, "link": "ab", "key_id": "x", "signature": "00"}'
        producer.send(audit.topic, key=RECORD_KEY, value=value).get(timeout=30)
        producer.close()
        result = verify_signed_log(setup.settings, app)
    finally:
        app.close()

    assert not result.ok
    assert f"{audit.topic} partition " in str(result.problems[0])
    assert "is not a signed head: not a JSON object of exactly" in str(result.problems[0])


def test_an_emptied_chain_is_refused_when_the_audit_topic_holds_heads(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> None:
    """The store's tables all emptied, its integrity record's mark too: the heads the
    relay published still show the chain was started."""
    setup = stream_setup(tmp_path, kafka_bootstrap)
    audit = signed(setup, tmp_path_factory.mktemp("keys"))
    app = setup.open_app()
    try:
        app.handle(c.CaptureLead(lead="ada@example.com", source="web", occurred_at=T0))
        setup.relay(app).run(once=True)
    finally:
        app.close()
    with setup.store_db() as db:
        for table in ("leadflow_log_chain", "leadflow_signed_heads"):
            db.execute("DELETE FROM {t}", t=table)
        db.execute("UPDATE {t} SET log_chained_at = NULL", t="leadflow_store_integrity")

    with pytest.raises(StoreTampered, match=f"the audit topic {audit.topic} holds a signed head"):
        setup.open_app()
