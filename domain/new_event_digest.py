"""The hash of a new event, computed through pydantic-core.

``hash_chain.event_digest`` hashes the standard library's canonical JSON (keys sorted,
compact, ``ensure_ascii=False``) and verifies any stored state with it. For an event
leadflow has just built, the same bytes come from pydantic-core several times faster,
given a key-sorted copy of the state: its top level is copied in an order known per
event class, and only the fields whose type may hold floats or objects are looked at
(the whole digest costs about half the canonical one's).

Both encoders spell text, integers, booleans, null, NaN and infinities alike (checked
over every code point and over floats of every magnitude); they spell some floats below
1e-4 differently (``1e-05`` against ``1e-5``), so a state holding one, or a float from
1e16 up (alike in every sample, left out as a precaution), or anything else unexpected,
is hashed by ``event_digest`` itself. ``tests/unit/domain/test_new_event_digest.py`` checks
that both give the same digest.
"""

from __future__ import annotations

import hashlib
import types
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import pydantic_core
from pydantic import BaseModel

from domain.hash_chain import event_digest

# types whose JSON dump is text, an integer, a boolean or null
_PLAIN_TYPES: tuple[type, ...] = (str, int, bool, UUID, datetime, date, Decimal, type(None))
_NOT_IN_STATE = frozenset({"originator_id", "originator_version", "hash"})


class _SpelledDifferently(Exception):
    """A value pydantic-core would not spell as the canonical encoder does."""


@dataclass(frozen=True, slots=True)
class _Layout:
    order: tuple[str, ...]  # the stored state's keys but ``hash``, sorted
    checked: tuple[str, ...]  # those whose values may hold floats or objects


_LAYOUTS: dict[type[BaseModel], _Layout] = {}


def new_event_digest(
    event_class: type[BaseModel],
    topic: str,
    originator_id: str,
    originator_version: int,
    state: dict[str, Any],
) -> str:
    """``event_digest`` of a state just dumped from an ``event_class`` (then sealed)."""
    layout = _LAYOUTS.get(event_class)
    if layout is None:
        layout = _LAYOUTS[event_class] = _layout_of(event_class)
    body = {key: state[key] for key in layout.order if key in state}
    if len(body) + ("hash" in state) != len(state):
        return event_digest(topic, originator_id, originator_version, state)
    try:
        for key in layout.checked:
            if key in body:
                body[key] = _canonical(body[key])
        canonical = pydantic_core.to_json(
            {"id": originator_id, "state": body, "topic": topic, "version": originator_version},
            inf_nan_mode="constants",
        )
    except (_SpelledDifferently, pydantic_core.PydanticSerializationError):
        return event_digest(topic, originator_id, originator_version, state)
    return hashlib.sha256(canonical).hexdigest()


def _canonical(value: Any) -> Any:
    """A key-sorted copy of a JSON value, when pydantic-core spells it canonically."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value == 0 or 1e-4 <= abs(value) < 1e16:
            return value
        raise _SpelledDifferently
    if kind is dict:
        if not all(type(key) is str for key in value):
            raise _SpelledDifferently
        return {key: _canonical(value[key]) for key in sorted(value)}
    if kind is list or kind is tuple:
        return [_canonical(item) for item in value]
    raise _SpelledDifferently


def _layout_of(event_class: type[BaseModel]) -> _Layout:
    fields = {
        name: info.annotation
        for name, info in event_class.model_fields.items()
        if name not in _NOT_IN_STATE
    }
    order = tuple(sorted(fields))
    return _Layout(order, tuple(name for name in order if not _always_plain(fields[name])))


def _always_plain(annotation: Any) -> bool:
    """Whether every JSON dump of a value of this type is text, an integer, a boolean,
    null, or a list of those (nothing to sort, no float)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _always_plain(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return all(_always_plain(arg) for arg in get_args(annotation))
    if origin is Literal:
        return all(type(arg) in (str, int, bool) or arg is None for arg in get_args(annotation))
    if origin in (tuple, list):
        args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
        return bool(args) and all(_always_plain(arg) for arg in args)
    if origin is not None:
        return False
    return isinstance(annotation, type) and issubclass(annotation, _PLAIN_TYPES)
