"""Processes around the event store: the relay to Kafka, engagement ingest, projection runners."""
