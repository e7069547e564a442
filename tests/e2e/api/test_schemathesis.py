"""Property-based API test (schemathesis) over every operation with an admin key, against
the real ``leadflow serve``: no 5xx, and every response agrees with the OpenAPI document."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.api.served import Served

ST = Path(sys.executable).parent / "st"
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


@pytest.mark.slow
def test_every_operation_with_an_admin_key(served: Served, tmp_path: Path) -> None:
    with served.client("sales") as sales:  # something for the generated requests to find
        sales.post("/v1/leads", json={"lead": "st@example.com", "source": "web"})
        paths = sales.get("/openapi.json").json()["paths"]
    operations = sum(len(methods) for methods in paths.values()) - 1  # all but the stream
    done = subprocess.run(
        [
            str(ST),
            "run",
            f"{served.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {served.tokens['admin']}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            "--workers",
            "1",
            "--no-color",
            "--exclude-operation-id",
            "events",  # a stream that never ends: tests/e2e/api/test_events.py
        ],
        cwd=tmp_path,  # schemathesis keeps its state in .schemathesis/ there
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert f"{operations} selected / {operations + 1} total" in done.stdout
