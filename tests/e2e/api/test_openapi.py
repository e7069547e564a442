"""The OpenAPI document validates (openapi-spec-validator)."""

from __future__ import annotations

from openapi_spec_validator import validate

from tests.e2e.api.served import Served


def test_the_openapi_document_validates(served: Served) -> None:
    with served.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "Problem" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
