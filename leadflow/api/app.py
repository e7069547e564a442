"""The app factory: ``create_app(settings)`` builds the whole HTTP API.

The app opens the application on the event store (the same composition root as every
other process) and the API keys table when it starts, and closes them when it stops.
Routes: commands (on the app itself), intake, reads, keys, erasure, events (SSE); open
paths: ``/healthz``, ``/openapi.json``, ``/docs``. A ``/metrics`` endpoint joins the open
paths later.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from adapters.api_keys import ApiKeys
from adapters.settings import Settings
from consumers.contracts.engagement import EngagementRecordV1
from leadflow.api import commands, docs, erasure, events, intake, keys, problems, reads
from leadflow.api.auth import Gate
from leadflow.api.json_body import JsonBodyRoute
from leadflow.api.middleware import RequestMiddleware
from leadflow.api.state import ApiState
from leadflow.bootstrap import open_application, open_store_db

API_ACTOR = "api"
BEARER = "bearer"


class Health(BaseModel):
    status: str
    store: str


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        application = open_application(settings, default_actor=API_ACTOR)
        db = open_store_db(settings)
        state = ApiState(settings, application)
        try:
            app.state.api = state
            app.state.gate = Gate(ApiKeys(db), settings.api)
            yield
        finally:
            state.close()
            db.close()
            application.close()

    app = FastAPI(
        title="leadflow",
        version="1",
        summary="Event-sourced lead lifecycle engine: commands, queries and live updates.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # leadflow logs each request itself; FastAPI's OpenTelemetry hooks would look the
        # providers up on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.router.route_class = JsonBodyRoute  # the routes added to the app itself
    problems.install(app)
    docs.install(app)
    app.add_middleware(RequestMiddleware, max_body_bytes=settings.api.max_body_bytes)
    authenticated = problems.documented(*problems.AUTHENTICATED)
    with_body = problems.documented(*problems.AUTHENTICATED, 415)
    commands.install(app)
    app.include_router(intake.routes, responses=with_body)
    app.include_router(reads.routes, responses=problems.documented(*problems.AUTHENTICATED, 404))
    app.include_router(keys.routes, responses=with_body)
    app.include_router(
        erasure.routes, responses=problems.documented(*problems.AUTHENTICATED, 404, 415)
    )
    app.include_router(events.routes, responses=authenticated)

    @app.get("/healthz", tags=["health"], operation_id="healthz")
    def healthz() -> Health:
        return Health(status="ok", store="postgresql" if settings.store.dsn else "sqlite")

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the problem and engagement record schemas it refers to."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problems.Problem.model_json_schema()
    record = EngagementRecordV1.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(record.pop("$defs", {}))
    schemas[intake.ENGAGEMENT_SCHEMA] = record
    _stream_as_text(document)
    app.openapi_schema = document
    return document


def _stream_as_text(document: dict[str, Any]) -> None:
    """OpenAPI 3.1 has no ``itemSchema`` (3.2's, for one event of a stream): a stream of
    Server-Sent Events is described as text."""
    for methods in document["paths"].values():
        for operation in methods.values():
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if "itemSchema" in media:
                        del media["itemSchema"]
                        media["schema"] = {"type": "string", "description": "Server-Sent Events"}
