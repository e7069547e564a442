"""``POST /v1/leads/{ref}/erasure`` through ``leadflow serve`` (a real process): the lead's
personal data is gone from every file of the data directory once the server stops, its
history keeps stages and times and still verifies, the funnel and KPIs do not change,
later commands are refused, and asking again is safe."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.api.served import Served, serving

LEAD = "grace.hopper@example.com"
# long enough not to turn up by chance in ciphertext ("q9" once did)
BANT = {
    "budget": "budget-x81",
    "authority": "authority-x82",
    "need": "need-x83",
    "timeline": "timeline-x84",
}
PERSONAL = (LEAD, "grace-phone-5550199", "reason-typed-x80", *BANT.values())


def _lifecycle(server: Served) -> None:
    with server.client("sales") as sales:
        steps = [
            ("/v1/leads", {"lead": LEAD, "source": "web", "attributes": {"phone": PERSONAL[1]}}),
            (f"/v1/leads/{LEAD}/mql", {"reason": PERSONAL[2]}),
            (f"/v1/leads/{LEAD}/accept", {"owner": "bob"}),
            (f"/v1/leads/{LEAD}/qualify", {"bant": BANT}),
        ]
        for path, body in steps:
            answer = sales.post(path, json=body)
            assert answer.status_code == 200, (path, answer.text)


def _reports(server: Served) -> tuple[object, object]:
    with server.client("manager") as manager:
        return manager.get("/v1/reports/funnel").json(), manager.get("/v1/reports/kpis").json()


def test_an_admin_erases_a_lead_and_nothing_personal_is_left(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(data_dir, api_rate_per_second="0") as server:
        _lifecycle(server)
        before = _reports(server)
        with server.client("sales") as sales:
            refused = sales.post(f"/v1/leads/{LEAD}/erasure", json={"reason": "art. 17"})
            assert refused.status_code == 403  # admin only
        with server.client("admin") as admin:
            erased = admin.post(f"/v1/leads/{LEAD}/erasure", json={"reason": "art. 17 request"})
            assert erased.status_code == 200, erased.text
            result = erased.json()
            assert result["already_erased"] is False
            assert result["key_destroyed"] is True
            assert result["unlinked"] is True
            by_email = admin.post(f"/v1/leads/{LEAD}/erasure", json={"reason": "art. 17 request"})
            assert by_email.status_code == 404  # the email leads to no lead any more
            again = admin.post(
                f"/v1/leads/{result['lead_id']}/erasure", json={"reason": "art. 17 request"}
            )
            assert again.status_code == 200, again.text
            assert again.json()["unlinked"] is False
            assert again.json()["already_erased"] is True
            assert again.json()["erased_at"] == result["erased_at"]
            unknown = admin.post("/v1/leads/nobody@example.com/erasure", json={"reason": "x"})
            assert unknown.status_code == 404
            assert unknown.headers["content-type"] == "application/problem+json"
        with server.client("sales") as sales:
            later = sales.post(f"/v1/leads/{result['lead_id']}/recycle", json={"reason": "x"})
        assert later.status_code == 409, later.text
        assert later.json()["type"].endswith(":lead-erased")
        assert _reports(server) == before
        with server.client("auditor") as auditor:
            history = auditor.get(f"/v1/leads/{result['lead_id']}/history").json()
            verify = auditor.get("/v1/verify").json()
        assert history["verified"] is True
        assert [e["type"] for e in history["events"]][-1] == "LeadErased"
        assert not any(value in str(history) for value in PERSONAL)
        assert verify["ok"] is True
    found = [
        (path.name, value)
        for path in data_dir.rglob("*")
        if path.is_file()
        for value in PERSONAL
        if value.encode() in path.read_bytes()
    ]
    assert found == []
