"""``leadflow relay``: the event store's notification log onto Kafka (transactional outbox)."""
