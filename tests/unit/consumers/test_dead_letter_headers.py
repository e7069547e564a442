"""A dead letter's headers are UTF-8 and bounded whatever its reason holds."""

from __future__ import annotations

from adapters.storable_text import REASON_MAX_CHARS
from consumers.ingest.consumer import dlq_headers
from consumers.ingest.ledger import LedgerEntry


def test_headers_of_a_hostile_reason_encode_and_stay_bounded() -> None:
    entry = LedgerEntry(
        "group\ud800", "topic", 0, 7, "dead_lettered", "id\x00", "not_utf8", "ab\ud800\x00" * 9000
    )
    headers = dict(dlq_headers(entry, "group\udfff"))
    reason = headers["dlq.reason"].decode("utf-8")
    assert "\x00" not in reason and reason.startswith("ab\\ud800\\u0000")
    assert len(reason) <= REASON_MAX_CHARS
    assert headers["dlq.consumer.group"] == b"group\\udfff"
    assert headers["dlq.source.offset"] == b"7"
