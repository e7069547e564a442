"""The JSON state stored for an event or snapshot, and upcasting of older states."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from domain.events import OMITTED_WHEN_NONE

_ID_FIELDS = ("originator_id", "originator_version")


def stored_state(model: BaseModel) -> dict[str, Any]:
    """The JSON state stored for an event or snapshot (ids live in their own columns)."""
    # ``model_dump(mode="json")`` without its Python wrapper; then dropping two keys
    # beats ``exclude=``
    state: dict[str, Any] = type(model).__pydantic_serializer__.to_python(model, mode="json")
    for field in _ID_FIELDS:
        state.pop(field, None)
    for field in OMITTED_WHEN_NONE:
        if field in state and state[field] is None:
            del state[field]
    return state


def remember_stored_state(event: BaseModel, state: dict[str, Any]) -> None:
    """Keep the state computed for a new event's hash, so it is serialised only once."""
    object.__setattr__(event, "_stored_state", state)


def upcast(cls: type[Any], state: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an older stored state, one schema version at a time, into the current one."""
    target = getattr(cls, "SCHEMA_VERSION", 1)
    version = state.get("schema_version", 1)
    if type(version) is not int or version < 1:
        msg = f"schema_version {version!r} of a stored {cls.__name__} is not a positive integer"
        raise ValueError(msg)
    while version < target:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
        state["schema_version"] = version
    return state
