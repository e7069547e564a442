"""Errors as ``application/problem+json`` (RFC 9457), one stable ``type`` per kind.

Every refusal of the domain keeps what it names: an illegal transition gives the lead or
deal, its stage and the attempted change as members of the problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from adapters.api_keys import ApiKeyError
from adapters.mapper import StoredEventError
from domain.errors import (
    AlreadyExists,
    DamagedHistory,
    DomainError,
    ErasedLead,
    IllegalTransition,
    UnknownAggregate,
)
from projections.store import UnstorableValue
from service.unit_of_work import CommandIdReused, ConcurrencyConflict

log = structlog.get_logger("leadflow.api")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:leadflow:problem:"


class Problem(BaseModel):
    """RFC 9457 problem details; extra members name what the problem is about."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ApiProblem(Exception):
    """Raised by the API's own checks; answered as a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.members = members


def problem_response(
    request: Request,
    status: int,
    kind: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **members: Any,
) -> JSONResponse:
    body = Problem(
        type=TYPE_PREFIX + kind,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        **members,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_from_domain(error: DomainError) -> ApiProblem:
    """The problem a refusal of the service layer is answered with."""
    if isinstance(error, IllegalTransition):
        return ApiProblem(
            409,
            "illegal-transition",
            "Illegal transition",
            str(error),
            aggregate=error.kind,
            external_id=error.external_id,
            aggregate_id=str(error.aggregate_id),
            stage=error.stage,
            attempted=error.attempted,
            why=error.why,
        )
    if isinstance(error, ErasedLead):
        return ApiProblem(409, "lead-erased", "Lead erased", str(error), lead_id=str(error.lead_id))
    if isinstance(error, UnknownAggregate):
        return ApiProblem(
            404, "unknown-aggregate", f"Unknown {error.kind}", str(error), aggregate=error.kind
        )
    if isinstance(error, AlreadyExists):
        return ApiProblem(409, "already-exists", f"{error.kind.title()} already exists", str(error))
    if isinstance(error, CommandIdReused):
        return ApiProblem(422, "idempotency-key-reused", "Idempotency key reused", str(error))
    if isinstance(error, ConcurrencyConflict):
        return ApiProblem(
            503,
            "concurrency-conflict",
            "Too many concurrent updates",
            str(error),
            headers={"Retry-After": "1"},
        )
    return ApiProblem(422, "command-refused", "Command refused", str(error))


def validation_problem(error: ValidationError | RequestValidationError) -> ApiProblem:
    errors = [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in error.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(first["loc"]) or "body"
    return ApiProblem(
        422, "invalid-input", "Invalid input", f"{where}: {first['msg']}", errors=errors
    )


_HTTP_KINDS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


def install(app: FastAPI) -> None:
    """Answer every error as a problem; nothing a client sends gives a 500."""

    async def on_problem(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiProblem)
        return problem_response(
            request,
            error.status,
            error.kind,
            error.title,
            error.detail,
            error.headers,
            **error.members,
        )

    async def on_domain(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        return await on_problem(request, problem_from_domain(error))

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ValidationError | RequestValidationError)
        return await on_problem(request, validation_problem(error))

    async def on_key_error(request: Request, error: Exception) -> JSONResponse:
        """A value refused below the API's own checks (a key name, a filter's text)."""
        return await on_problem(
            request, ApiProblem(422, "invalid-input", "Invalid input", str(error))
        )

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 400:  # a body FastAPI could not read: invalid input
            why = f"body: {error.detail} (send UTF-8 JSON)"
            return problem_response(request, 422, "invalid-input", "Invalid input", why)
        kind = _HTTP_KINDS.get(error.status_code, f"http-{error.status_code}")
        headers = error.headers
        if error.status_code == 405:  # the router names one route's methods: name them all
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return problem_response(
            request, error.status_code, kind, str(error.detail), headers=headers
        )

    async def on_damaged(request: Request, error: Exception) -> JSONResponse:
        log.error(  # its message may quote the event: ids only
            "stored_event_damaged",
            aggregate_id=str(getattr(error, "originator_id", getattr(error, "aggregate_id", None))),
            version=getattr(error, "originator_version", getattr(error, "version", None)),
        )
        return problem_response(request, 500, "store-damaged", "Stored event damaged", str(error))

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unexpected_error", error_type=type(error).__name__, exc_info=error)
        return problem_response(
            request, 500, "internal", "Internal error", "see the server log for this request id"
        )

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ValidationError, on_validation)
    app.add_exception_handler(ApiKeyError, on_key_error)
    app.add_exception_handler(UnstorableValue, on_key_error)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StoredEventError, on_damaged)
    app.add_exception_handler(DamagedHistory, on_damaged)
    app.add_exception_handler(Exception, on_unexpected)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on the request's path."""
    methods: set[str] = set()
    for route in _every_route(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _every_route(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes, those of included routers too (FastAPI keeps those apart)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            yield from _every_route(included.routes)
        else:
            yield route


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these problem statuses (a ``Problem`` body)."""
    return {
        status: {
            "description": _WHY[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


_WHY = {
    401: "no valid API key",
    403: "the key's role may not do this",
    404: "unknown lead or deal",
    409: "illegal transition, or the deal already exists",
    412: "If-Match: the lead or deal moved on",
    413: "body too large",
    415: "the body is not JSON",
    422: "invalid input, a refused command or a reused Idempotency-Key",
    429: "rate limit: wait Retry-After seconds",
    500: "a damaged stored event (named), or a fault of the server",
    503: "too many concurrent updates: retry",
}
AUTHENTICATED = (401, 403, 413, 422, 429, 500)
