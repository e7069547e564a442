"""The authorization matrix: every operation of the OpenAPI document x every role and no
token, against the issue's role table (written out here, independently of the server's)."""

from __future__ import annotations

from typing import Any

from tests.e2e.api.served import ROLES, Served

COMMANDS = (
    *("capture_lead", "record_engagement", "log_contact", "mark_mql", "accept_lead"),
    *("reject_lead", "recycle_lead", "disqualify_lead", "reopen_lead", "qualify_lead"),
    *("fast_track", "open_deal", "move_deal", "win_deal", "lose_deal", "reopen_deal"),
    "update_deal",
)
SALES_READS = {"sales", "manager", "admin"}
# marketing: intake; sales: commands, leads, deals, board; manager: every read;
# auditor: history, verify; admin: everything.
EXPECTED: dict[str, set[str]] = {
    "submit_engagements": {"marketing", "admin"},
    **{name: {"sales", "admin"} for name in COMMANDS},
    "get_lead": SALES_READS,
    "get_deal": SALES_READS,
    "pipeline_board": SALES_READS,
    "funnel": {"manager", "admin"},
    "kpis": {"manager", "admin"},
    "stalled": {"manager", "admin"},
    "lead_history": {"manager", "auditor", "admin"},
    "lead_history_export": {"manager", "auditor", "admin"},
    "verify": {"manager", "auditor", "admin"},
    "list_api_keys": {"admin"},
    "create_api_key": {"admin"},
    "revoke_api_key": {"admin"},
    "events": {"manager", "admin"},
    "forget_lead": {"admin"},
}
OPEN = {"healthz"}


def _operations(server: Served) -> list[tuple[str, str, str]]:
    with server.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    return [
        (method.upper(), path, spec["operationId"])
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    ]


def _request(server: Served, role: str | None, method: str, path: str) -> int:
    concrete = path.replace("{ref}", "matrix@example.com").replace("{name}", "nobody")
    body: Any = None
    if method in ("POST", "PATCH"):
        body = {"name": f"made-by-{role}", "role": "auditor"} if "api-keys" in path else {}
        if path.endswith("/erasure"):
            body = {"reason": "matrix"}
    params = {"follow": "false"} if path == "/v1/events" else None  # the stream ends
    with server.client(role) as client:
        return client.request(method, concrete, json=body, params=params).status_code


def test_every_operation_against_the_role_table(served: Served) -> None:
    operations = _operations(served)
    assert {op for _, _, op in operations} == set(EXPECTED) | OPEN
    wrong = []
    for method, path, operation in operations:
        if operation in OPEN:
            assert _request(served, None, method, path) == 200
            continue
        got = _request(served, None, method, path)
        if got != 401:
            wrong.append((operation, "no token", got))
        for role in ROLES:
            got = _request(served, role, method, path)
            allowed = role in EXPECTED[operation]
            if (allowed and got in (401, 403)) or (not allowed and got != 403):
                wrong.append((operation, role, got))
    assert wrong == []


def test_a_revoked_or_unknown_token_is_401(served: Served) -> None:
    with served.client(Authorization="Bearer lf_not-a-token") as stranger:
        answer = stranger.get("/v1/reports/kpis")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["type"] == "urn:leadflow:problem:unauthorized"
    with served.client("admin") as admin:
        made = admin.post("/v1/api-keys", json={"name": "short-lived", "role": "manager"})
        assert made.status_code == 201
        token = made.json()["token"]
        assert admin.delete("/v1/api-keys/short-lived").status_code == 200
    with served.client(Authorization=f"Bearer {token}") as revoked:
        assert revoked.get("/v1/reports/kpis").status_code == 401
