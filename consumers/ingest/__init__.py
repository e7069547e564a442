"""``leadflow ingest`` and ``leadflow engage``: engagement records into the event store."""
