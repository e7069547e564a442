"""A sales system's consumer of leadflow.qualification.v1 that knows nothing of leadflow.

It imports only kafka-python, jsonschema and the standard library, reads the topic from
the start to its end, validates every record against the committed JSON Schema files and
prints the number of records per type as JSON. Exit 1 on the first invalid record.

    python plain_qualification_consumer.py BOOTSTRAP TOPIC SCHEMA_DIR
"""

import json
import sys
import time
from pathlib import Path

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from kafka import KafkaConsumer, TopicPartition

LEADFLOW_PACKAGES = {"leadflow", "domain", "consumers", "projections"}


def read_all(bootstrap, topic, timeout=60.0):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    deadline = time.monotonic() + timeout
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records = []
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        if time.monotonic() > deadline:
            raise SystemExit("could not read the topic to its end")
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    consumer.close()
    return records


def main(bootstrap, topic, schema_dir):
    envelope = json.loads((schema_dir / "envelope.json").read_text())
    by_type = {
        path.stem: json.loads(path.read_text())
        for path in schema_dir.glob("*.json")
        if path.stem != "envelope"
    }
    validators = {}
    for name, schema in [("envelope", envelope), *by_type.items()]:
        Draft202012Validator.check_schema(schema)
        validators[name] = Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
    counts: dict[str, int] = {}
    for record in read_all(bootstrap, topic):
        value = json.loads(record.value)
        validators["envelope"].validate(value)
        validators[value["type"]].validate(value)
        headers = dict(record.headers)
        assert headers["type"].decode() == value["type"]
        assert headers["event_id"].decode() == value["event_id"]
        if value["type"] == "lead.erased":  # no lead state: only its id and its deals'
            owner_id = value["lead_id"]
        else:
            owner_id = (value["lead"] if value["type"].startswith("lead.") else value["deal"])["id"]
        assert record.key.decode() == owner_id, "records are keyed by lead id or deal id"
        counts[value["type"]] = counts.get(value["type"], 0) + 1
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in LEADFLOW_PACKAGES)
    assert not leaked, f"imported leadflow code: {leaked}"
    print(json.dumps(counts, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
