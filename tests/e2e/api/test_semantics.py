"""Idempotency-Key, If-Match, problem+json, request ids, body and rate limits, through a
real ``leadflow serve``."""

from __future__ import annotations

import json
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.api.served import Served, run_cli, serving

PROBLEM = "application/problem+json"


def _capture(client: httpx.Client, lead: str) -> httpx.Response:
    answer = client.post("/v1/leads", json={"lead": lead, "source": "web"})
    assert answer.status_code == 200, answer.text
    return answer


def _problem(answer: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = answer.json()
    assert body["type"] == f"urn:leadflow:problem:{kind}"
    assert body["status"] == status
    return body


def test_the_same_key_and_body_returns_the_recorded_outcome(served: Served) -> None:
    with served.client("sales") as sales:
        _capture(sales, "idem@example.com")
        headers = {"Idempotency-Key": "idem-mql-1"}
        first = sales.post("/v1/leads/idem@example.com/mql", json={}, headers=headers)
        again = sales.post("/v1/leads/idem@example.com/mql", json={}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert first.json()["replayed"] is False
        assert again.json()["replayed"] is True
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["events"] == first.json()["events"]
        assert again.json()["aggregates"][0]["version"] == first.json()["aggregates"][0]["version"]
        reserved = sales.post(
            "/v1/leads/idem@example.com/mql", json={}, headers={"Idempotency-Key": "generated:1"}
        )
        loc = _problem(reserved, 422, "invalid-input")["errors"][0]["loc"]  # type: ignore[index]
        assert loc == ["header", "Idempotency-Key"]
        for derived in ("engagement:x:e-1", "sha256:00ff"):  # ids leadflow derives itself
            squat = sales.post(
                "/v1/leads/idem@example.com/contacts",
                json={"channel": "call"},
                headers={"Idempotency-Key": derived},
            )
            body = _problem(squat, 422, "invalid-input")
            assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]  # type: ignore[index]
            assert "reserves for the ids it derives" in str(body["detail"])
        other = sales.post(
            "/v1/leads/idem@example.com/mql", json={"reason": "other"}, headers=headers
        )
        body = _problem(other, 422, "idempotency-key-reused")
        assert "idem-mql-1" in str(body["detail"])


def test_the_same_command_sent_concurrently_with_one_key_is_applied_once(served: Served) -> None:
    with served.client("sales") as sales:
        version = _capture(sales, "race@example.com").json()["aggregates"][0]["version"]

        def send(_: int) -> dict[str, object]:
            with served.client("sales") as client:
                answer = client.post(
                    "/v1/leads/race@example.com/contacts",
                    json={"channel": "call", "outcome": "left a message"},
                    headers={"Idempotency-Key": "race-contact-1"},
                )
                assert answer.status_code == 200, answer.text
                result: dict[str, object] = answer.json()
                return result

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, range(8)))
        assert sum(not r["replayed"] for r in results) == 1
        lead = sales.get("/v1/leads/race@example.com").json()
        assert lead["version"] == version + 1


def test_concurrent_commands_each_get_their_own_outcome(served: Served) -> None:
    """Sent at once, they may share a transaction on the server: a refusal among them
    refuses only itself, and each answer shows the state its own command left."""
    leads = [f"group-{n}@example.com" for n in range(12)]
    with served.client("sales") as sales:
        for lead in leads:
            _capture(sales, lead)
        shared = _capture(sales, "group-shared@example.com").json()["aggregates"][0]["version"]

        def send(number: int) -> httpx.Response:
            with served.client("sales") as client:
                if number < len(leads):
                    return client.post(f"/v1/leads/{leads[number]}/mql", json={})
                if number < len(leads) + 6:
                    return client.post(
                        "/v1/leads/group-shared@example.com/contacts", json={"channel": "call"}
                    )
                return client.post(f"/v1/leads/{leads[0]}/accept", json={"owner": "ae-1"})

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, range(len(leads) + 7)))
        for answer in answers[: len(leads)]:
            assert answer.status_code == 200, answer.text
            assert answer.json()["aggregates"][0]["stage"] == "mql"
        contacts = answers[len(leads) : len(leads) + 6]
        assert all(a.status_code == 200 for a in contacts), [a.text for a in contacts]
        tags = sorted(int(a.headers["ETag"].strip('"')) for a in contacts)
        assert tags == list(range(shared + 1, shared + 7))  # one version each, none shared
        accept = answers[-1]  # raced the MQL of the same lead: applied after it, or refused
        if accept.status_code == 200:
            assert accept.json()["aggregates"][0]["stage"] == "sal"
        else:
            _problem(accept, 409, "illegal-transition")
        assert sales.get("/v1/leads/group-shared@example.com").json()["version"] == shared + 6


def test_a_body_that_is_not_json_is_415(served: Served) -> None:
    with served.client("sales") as sales:
        answer = sales.post(
            "/v1/leads", content=b"lead=a@b.c", headers={"Content-Type": "text/plain"}
        )
        _problem(answer, 415, "unsupported-media-type")
        typed = sales.post(
            "/v1/leads",
            json={"lead": "typed@example.com", "source": "web"},
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert typed.status_code == 200, typed.text


def test_if_match_refuses_a_moved_lead_with_412(served: Served) -> None:
    with served.client("sales") as sales:
        tag = _capture(sales, "etag@example.com").headers["ETag"]
        assert sales.get("/v1/leads/etag@example.com").headers["ETag"] == tag
        moved = sales.post("/v1/leads/etag@example.com/mql", json={}, headers={"If-Match": tag})
        assert moved.status_code == 200
        assert moved.headers["ETag"] != tag
        stale = sales.post(
            "/v1/leads/etag@example.com/disqualify",
            json={"reason": "spam"},
            headers={"If-Match": tag},
        )
        body = _problem(stale, 412, "precondition-failed")
        assert body["current_version"] == int(moved.headers["ETag"].strip('"'))
        unknown = sales.post(
            "/v1/leads/nobody@example.com/mql", json={}, headers={"If-Match": '"1"'}
        )
        _problem(unknown, 412, "precondition-failed")


def test_refusals_are_problems_naming_what_they_are_about(served: Served) -> None:
    with served.client("sales") as sales:
        _capture(sales, "prob@example.com")
        illegal = _problem(
            sales.post("/v1/leads/prob@example.com/accept", json={}), 409, "illegal-transition"
        )
        assert illegal["aggregate"] == "lead"
        assert illegal["external_id"] == "prob@example.com"
        assert illegal["stage"] == "new"
        assert illegal["attempted"] == "accept"
        unknown = _problem(sales.get("/v1/leads/nobody@example.com"), 404, "unknown-aggregate")
        assert "nobody@example.com" in str(unknown["detail"])
        invalid = _problem(
            sales.post("/v1/leads/prob@example.com/contacts", json={"channel": "pigeon"}),
            422,
            "invalid-input",
        )
        assert "channel" in str(invalid["detail"])
        _problem(
            sales.post(
                "/v1/leads", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
            "invalid-input",
        )
        twice = _problem(
            sales.post(
                "/v1/leads",
                content=b'{"lead": "a@example.com", "source": "web", "lead": "b@example.com"}',
                headers={"content-type": "application/json"},
            ),
            422,
            "invalid-input",
        )
        assert 'the key "lead" twice' in str(twice["detail"])
        deep = _problem(
            sales.post(
                "/v1/leads",
                content=b"[" * 100_000 + b"]" * 100_000,
                headers={"content-type": "application/json"},
            ),
            422,
            "invalid-input",
        )
        assert "nested far deeper" in str(deep["detail"])
        _problem(
            sales.post("/v1/deals", json={"deal": "D-x", "amount": "1", "pipeline": "nope"}),
            422,
            "command-refused",
        )
        _problem(sales.get("/v1/no-such-thing"), 404, "not-found")
        _problem(sales.delete("/v1/leads/prob@example.com"), 405, "method-not-allowed")
        # a path two routes share: the Allow header names both routes' methods
        not_allowed = sales.delete("/v1/deals/D-x")
        _problem(not_allowed, 405, "method-not-allowed")
        assert not_allowed.headers["allow"] == "GET, PATCH"
        _problem(
            sales.post("/v1/leads", content=b"x" * (1024 * 1024 + 1)), 413, "payload-too-large"
        )
        chunked = iter([b"x" * 700_000, b"x" * 700_000])  # no Content-Length: counted as read
        _problem(sales.post("/v1/leads", content=chunked), 413, "payload-too-large")


def test_every_response_carries_a_request_id_that_is_in_the_log(served: Served) -> None:
    with served.client() as anonymous:
        given = anonymous.get("/healthz", headers={"X-Request-ID": "trace-me-42"})
        made = anonymous.get("/v1/reports/kpis")
    assert given.headers["X-Request-ID"] == "trace-me-42"
    assert len(made.headers["X-Request-ID"]) == 32
    lines = [
        json.loads(line) for line in served.log.read_text().splitlines() if line.startswith("{")
    ]
    logged = {(line.get("request_id"), line.get("status")) for line in lines}
    assert ("trace-me-42", 200) in logged
    assert (made.headers["X-Request-ID"], 401) in logged


def test_a_key_over_its_rate_gets_429(tmp_path: Path) -> None:
    with serving(tmp_path / "data", api_rate_per_second="0.01", api_rate_burst="3") as server:
        with server.client("sales") as sales:
            codes = [sales.get("/v1/pipeline").status_code for _ in range(5)]
            limited = sales.get("/v1/pipeline")
        with server.client("manager") as manager:  # another key has its own budget
            assert manager.get("/v1/pipeline").status_code == 200
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    _problem(limited, 429, "rate-limited")
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "path", ["/openapi.json", "/docs", "/healthz", "/docs/assets/swagger-ui.css"]
)
def test_open_paths_need_no_token_and_the_docs_need_no_internet(served: Served, path: str) -> None:
    with served.client() as anonymous:
        answer = anonymous.get(path)
    assert answer.status_code == 200
    if path == "/docs":
        assert "/docs/assets/swagger-ui-bundle.js" in answer.text
        assert "https://" not in answer.text.replace("https://swagger.io", "")


def test_the_actor_is_the_key_and_on_behalf_of_is_recorded_beside_it(served: Served) -> None:
    with served.client("sales") as sales, served.client("auditor") as auditor:
        _capture(sales, "actor@example.com")
        forged = sales.post("/v1/leads/actor@example.com/mql", json={"actor": "someone-else"})
        assert _problem(forged, 422, "invalid-input")["errors"][0]["loc"] == ["body", "actor"]  # type: ignore[index]
        done = sales.post("/v1/leads/actor@example.com/mql", json={"on_behalf_of": "ann@crm"})
        assert done.status_code == 200, done.text
        events = auditor.get("/v1/leads/actor@example.com/history").json()["events"]
    assert [e["actor"] for e in events] == ["sales-key"] * len(events)
    assert events[-1]["data"]["on_behalf_of"] == "ann@crm"
    assert "on_behalf_of" not in events[0]["data"]  # absent when not given: stored as before


def test_a_lead_whose_first_event_is_gone_is_a_store_damaged_problem(served: Served) -> None:
    """Written by another process, then damaged below leadflow: never a bare 500."""
    done = run_cli(served.env, "capture-lead", "damaged@example.com", "--source", "web")
    assert done.returncode == 0, done.stderr
    shown = run_cli(served.env, "lead", "show", "damaged@example.com", "--json")
    lead_id = uuid.UUID(json.loads(shown.stdout)["id"])
    store = Path(served.env["LEADFLOW_DATA_DIR"]) / "events.sqlite3"
    with sqlite3.connect(store) as db:
        db.execute(
            "DELETE FROM stored_events WHERE originator_id = ? AND originator_version = 1",
            (lead_id.hex,),
        )
    with served.client("sales") as sales:
        body = _problem(sales.get("/v1/leads/damaged@example.com"), 500, "store-damaged")
        assert str(lead_id) in str(body["detail"])
