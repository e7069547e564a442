"""``/v1/api-keys``: the admin's view of the keys (``leadflow api-key`` over HTTP).

Async: the keys' connection belongs to the event loop's thread."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, Field

from adapters.api_keys import ApiKey, Role
from leadflow.api.auth import gate_of, require
from leadflow.api.json_body import JsonBodyRoute
from leadflow.api.roles import Permission

Admin = Annotated[ApiKey, Depends(require(Permission.KEYS))]


class KeyView(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="the actor on its events")
    role: Role


class CreatedKey(KeyView):
    token: str = Field(description="shown this once; only its hash is stored")


def _view(key: ApiKey) -> KeyView:
    return KeyView(
        key_id=key.key_id,
        name=key.name,
        role=key.role,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


routes = APIRouter(prefix="/v1/api-keys", tags=["api keys"], route_class=JsonBodyRoute)


@routes.get("", operation_id="list_api_keys")
async def list_keys(request: Request, admin: Admin) -> list[KeyView]:
    return [_view(k) for k in gate_of(request).keys.list()]


@routes.post("", status_code=status.HTTP_201_CREATED, operation_id="create_api_key")
async def create_key(request: Request, new: NewKey, admin: Admin) -> CreatedKey:
    key, token = gate_of(request).keys.create(new.name, new.role)
    return CreatedKey(**_view(key).model_dump(), token=token)


@routes.delete("/{name}", operation_id="revoke_api_key")
async def revoke_key(
    request: Request, name: Annotated[str, Path(max_length=100)], admin: Admin
) -> KeyView:
    gate = gate_of(request)
    revoked = gate.keys.revoke(name)
    gate.forget()
    return _view(revoked)
