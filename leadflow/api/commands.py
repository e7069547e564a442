"""``/v1`` lifecycle and deal commands: one operation per command of ``service.handlers``.

Each request body is the command model without what the request itself gives: the lead
or deal of the path, ``actor`` (the API key's name), ``command_id`` (the
``Idempotency-Key`` header) and ``command``. Without ``occurred_at`` the command is dated
on receipt, and that time is not part of its content (as the CLI's default "now"), so a
retry with the same key is the same command.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Body, Depends, FastAPI, Header, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from adapters.api_keys import ApiKey
from domain import commands as c
from domain.deal import Deal
from domain.errors import UnknownAggregate
from domain.lead import Lead
from leadflow.api.auth import require
from leadflow.api.problems import AUTHENTICATED, ApiProblem, documented
from leadflow.api.roles import Permission
from leadflow.api.state import ApiState
from leadflow.api.views import CommandResult, etag, parse_if_match, view
from service.command_fingerprint import sent_id_refusal, stamped_on_receipt
from service.unit_of_work import Outcome

Target = Literal["lead", "deal"]
_FROM_REQUEST = {"actor", "command_id", "command"}


@dataclass(frozen=True)
class Route:
    method: Literal["POST", "PATCH"]
    path: str
    model: type[c.Command]
    summary: str

    @property
    def target(self) -> Target:
        return "deal" if issubclass(self.model, c.DealCommand) else "lead"

    @property
    def ref_in_path(self) -> bool:
        return "{" in self.path

    @property
    def operation_id(self) -> str:
        name: str = self.model.model_fields["command"].default
        return name


ROUTES: tuple[Route, ...] = (
    Route("POST", "/leads", c.CaptureLead, "Capture a lead (again: update its attributes)"),
    Route("POST", "/leads/{ref}/engagements", c.RecordEngagement, "Record an engagement"),
    Route("POST", "/leads/{ref}/contacts", c.LogContact, "Log a contact with the lead"),
    Route("POST", "/leads/{ref}/mql", c.MarkMql, "Mark a new or recycled lead as MQL"),
    Route("POST", "/leads/{ref}/accept", c.AcceptLead, "Sales accepts an MQL (SAL)"),
    Route("POST", "/leads/{ref}/reject", c.RejectLead, "Sales rejects an MQL"),
    Route("POST", "/leads/{ref}/recycle", c.RecycleLead, "Send a lead back to nurturing"),
    Route("POST", "/leads/{ref}/disqualify", c.DisqualifyLead, "Disqualify a lead"),
    Route("POST", "/leads/{ref}/reopen", c.ReopenLead, "Reopen a disqualified lead"),
    Route("POST", "/leads/{ref}/qualify", c.QualifyLead, "Qualify an SAL as SQL with BANT"),
    Route("POST", "/leads/{ref}/fast-track", c.FastTrack, "Move a lead past skipped stages"),
    Route("POST", "/deals", c.OpenDeal, "Open a deal, from an SQL lead or directly"),
    Route("POST", "/deals/{ref}/move", c.MoveDeal, "Move a deal to another stage"),
    Route("POST", "/deals/{ref}/win", c.WinDeal, "Close a deal as won"),
    Route("POST", "/deals/{ref}/lose", c.LoseDeal, "Close a deal as lost"),
    Route("POST", "/deals/{ref}/reopen", c.ReopenDeal, "Reopen a closed deal"),
    Route("PATCH", "/deals/{ref}", c.UpdateDeal, "Change a deal's amount, currency, close date"),
)


def request_body(route: Route) -> type[BaseModel]:
    """The command model as a request body (see the module's docstring)."""
    excluded = set(_FROM_REQUEST)
    if route.ref_in_path:
        excluded.add(route.target)
    fields: dict[str, Any] = {}
    for name, info in route.model.model_fields.items():
        if name in excluded:
            continue
        if name == "occurred_at":
            fields[name] = (
                c.Timestamp | None,
                Field(default=None, description="business time, ISO 8601 (default: on receipt)"),
            )
            continue
        fields[name] = (info.annotation, info)
    return create_model(
        f"{route.model.__name__}Request",
        __config__=ConfigDict(extra="forbid"),
        __doc__=route.summary,
        **fields,
    )


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="the command's id in the command ledger: the same key and body "
        "returns the recorded outcome; the same key with another body is refused",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="the ETag (version) the lead or deal of the path must still have",
    ),
]


def _aggregate(state: ApiState, aggregate_id: UUID, *, just_saved: bool) -> Lead | Deal:
    """The aggregate after the command: the one this process just saved is in the
    aggregate cache (read there, on the writer thread, without a copy); a replayed
    command's is read from the store."""
    if just_saved:
        cached = state.app.peek_cached(aggregate_id)
        if isinstance(cached, Lead | Deal):
            return cached
    try:
        return state.app.get_lead(str(aggregate_id))
    except UnknownAggregate:
        return state.app.get_deal(str(aggregate_id))


def _check_if_match(state: ApiState, route: Route, ref: str, if_match: str) -> None:
    versions = parse_if_match(if_match)
    try:
        current = (
            state.app.get_lead(ref) if route.target == "lead" else state.app.get_deal(ref)
        ).version
    except UnknownAggregate:
        current = None
    if current is None or (versions is not None and current not in versions):
        have = "does not exist" if current is None else f"is at version {current}"
        raise ApiProblem(
            412,
            "precondition-failed",
            "Precondition failed",
            f"If-Match {if_match}: the {route.target} {ref!r} {have}",
            current_version=current,
        )


def _from_request(error: ValidationError, route: Route) -> ApiProblem:
    """The command's refusal, naming where the request gave the value."""
    where = {"command_id": "header"}
    if route.ref_in_path:
        where[route.target] = "path"
    names = {"command_id": "Idempotency-Key"}
    errors = []
    for item in error.errors(include_url=False):
        first = str(item["loc"][0]) if item["loc"] else ""
        loc = [where.get(first, "body"), names.get(first, first), *map(str, item["loc"][1:])]
        errors.append({"loc": loc, "msg": item["msg"], "type": item["type"]})
    detail = f"{'.'.join(errors[0]['loc'])}: {errors[0]['msg']}"
    return ApiProblem(422, "invalid-input", "Invalid input", detail, errors=errors)


def command_of(
    *,
    route: Route,
    key: ApiKey,
    body: BaseModel,
    ref: str | None = None,
    idempotency_key: str | None = None,
) -> c.Command:
    """The command a request sends (422 when the command's model refuses it)."""
    data = body.model_dump(exclude_unset=True)
    if ref is not None:
        data[route.target] = ref
    data["actor"] = key.name
    stamped = data.get("occurred_at") is None
    if stamped:
        data["occurred_at"] = datetime.now(UTC)
    if idempotency_key is not None:
        refusal = sent_id_refusal(idempotency_key)
        if refusal is not None:
            error = {"loc": ["header", "Idempotency-Key"], "msg": refusal, "type": "reserved"}
            raise ApiProblem(
                422,
                "invalid-input",
                "Invalid input",
                f"header.Idempotency-Key: {refusal}",
                errors=[error],
            )
        data["command_id"] = idempotency_key
    try:
        command = route.model.model_validate(data)
    except ValidationError as error:
        raise _from_request(error, route) from None
    return stamped_on_receipt(command) if stamped else command


def answer(state: ApiState, route: Route, outcome: Outcome) -> Response:
    """The command's result: the aggregates it changed, the addressed one's ETag."""
    aggregates = [
        view(_aggregate(state, i, just_saved=not outcome.replayed)) for i in outcome.aggregate_ids
    ]
    applied = outcome.status == "applied" or (outcome.replayed and outcome.events > 0)
    result = CommandResult(
        status="applied" if applied else "duplicate",
        replayed=outcome.replayed,
        events=outcome.events,
        aggregates=aggregates,
    )
    headers = {}
    addressed = next((a for a in aggregates if a.kind == route.target), None)
    if addressed is not None:
        headers["ETag"] = etag(addressed.version)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    # serialised once, here: FastAPI would validate the states again against the model
    return Response(result.model_dump_json(), media_type="application/json", headers=headers)


def _apply_if_match(
    state: ApiState, route: Route, command: c.Command, ref: str, if_match: str
) -> Response:
    """Check and apply together, on the writer thread (nothing can move in between)."""
    _check_if_match(state, route, ref, if_match)
    return answer(state, route, state.app.handle(command))


def _endpoint(route: Route) -> Any:
    body_model = request_body(route)

    async def endpoint(request: Request, if_match: str | None = None, **kwargs: Any) -> Response:
        state: ApiState = request.app.state.api  # not a dependency: one less to solve
        command = command_of(route=route, **kwargs)
        ref = kwargs.get("ref")
        if if_match is not None and ref is not None:
            return await state.write(_apply_if_match, state, route, command, ref, if_match)
        return await state.command(command, partial(answer, state, route))

    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(
            "key",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[ApiKey, Depends(require(Permission.COMMAND))],
        ),
        inspect.Parameter(
            "body", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[body_model, Body()]
        ),
        inspect.Parameter(
            "idempotency_key",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=IdempotencyKey,
            default=None,
        ),
    ]
    if route.ref_in_path:
        parameters += [
            inspect.Parameter(
                "ref",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[
                    str,
                    Path(max_length=320, description=f"the {route.target}'s external id or UUID"),
                ],
            ),
            inspect.Parameter(
                "if_match", inspect.Parameter.KEYWORD_ONLY, annotation=IfMatch, default=None
            ),
        ]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = route.operation_id
    return endpoint


def install(app: FastAPI) -> None:
    """The command routes, added to the app itself: an included router would put a
    second, slower matching step before every command."""
    for route in ROUTES:
        app.add_api_route(
            "/v1" + route.path,
            _endpoint(route),
            methods=[route.method],
            summary=route.summary,
            operation_id=route.operation_id,
            tags=["deals" if route.target == "deal" else "leads"],
            response_model=CommandResult,
            responses=documented(*AUTHENTICATED, 404, 409, 412, 415, 503),
        )
