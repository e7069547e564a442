"""``GET /v1/events``: lead and deal changes as Server-Sent Events, resumable with
Last-Event-ID, and live while the stream is open."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx

from tests.e2e.api.served import Served


def _events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """SSE frames as {field: value}; comments are skipped."""
    frame: dict[str, str] = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")


def _stored(client: httpx.Client, **headers: str) -> list[dict[str, str]]:
    answer = client.get("/v1/events", params={"follow": "false", "after": 0}, headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    return list(_events(iter(answer.text.splitlines())))


def test_changes_are_streamed_and_resumable(served: Served) -> None:
    with served.client("sales") as sales, served.client("manager") as manager:
        sales.post("/v1/leads", json={"lead": "sse@example.com", "source": "web"})
        sales.post("/v1/deals", json={"deal": "D-SSE", "amount": "10"})
        frames = _stored(manager)
        kinds = {f["event"] for f in frames}
        assert kinds == {"lead", "deal"}
        lead = next(json.loads(f["data"]) for f in frames if f["event"] == "lead")
        assert lead["type"] == "LeadCaptured"
        assert lead["actor"] == "sales-key"
        ids = [int(f["id"]) for f in frames]
        assert ids == sorted(ids)
        resumed = manager.get(
            "/v1/events", params={"follow": "false"}, headers={"Last-Event-ID": str(ids[0])}
        )
        assert [int(f["id"]) for f in _events(iter(resumed.text.splitlines()))] == ids[1:]


def test_a_live_stream_gets_a_change_made_while_it_is_open(served: Served) -> None:
    received: list[dict[str, str]] = []
    opened = threading.Event()

    def listen() -> None:
        with (
            served.client("manager") as manager,
            manager.stream("GET", "/v1/events", params={"after": 0}) as stream,
        ):
            opened.set()
            for frame in _events(stream.iter_lines()):
                received.append(frame)
                if "live@example.com" in frame.get("data", ""):
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(60)
    with served.client("sales") as sales:
        answer = sales.post("/v1/leads", json={"lead": "live@example.com", "source": "web"})
        assert answer.status_code == 200
    listener.join(120)
    assert not listener.is_alive()
    assert any("live@example.com" in f["data"] for f in received)


def test_a_resume_id_beyond_any_position_is_an_empty_stream_and_a_bad_one_a_problem(
    served: Served,
) -> None:
    with served.client("manager") as manager:
        huge = "9" * 30
        for headers, params in (({"Last-Event-ID": huge}, {}), ({}, {"after": str(2**63 - 1)})):
            answer = manager.get(
                "/v1/events", params={"follow": "false", **params}, headers=headers
            )
            assert answer.status_code == 200
            assert list(_events(iter(answer.text.splitlines()))) == []
        for headers, params in (({"Last-Event-ID": "abc"}, {}), ({}, {"after": str(2**63)})):
            answer = manager.get(
                "/v1/events", params={"follow": "false", **params}, headers=headers
            )
            assert answer.status_code == 422, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert "unexpected_error" not in served.log.read_text()
