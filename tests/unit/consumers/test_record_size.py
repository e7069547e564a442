"""``record_size`` counts the bytes the broker counts: key, value, header names (UTF-8)
and header values."""

from __future__ import annotations

from consumers.contracts.events_topic import KafkaRecord, record_size


def test_record_size_counts_utf8_bytes_of_header_names() -> None:
    headers = [("event_id", b"abc"), ("naïve", b"\xc3\xa9"), ("", b"")]
    record = KafkaRecord(key=b"key", value=b"value", headers=headers)
    expected = 3 + 5 + sum(len(k.encode()) + len(v) for k, v in headers)
    assert record_size(record) == expected == 3 + 5 + 8 + 3 + 6 + 2
