"""A faster deep copy for leadflow's mutable pydantic models (aggregates and their parts)."""

from __future__ import annotations

from copy import deepcopy
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self
from uuid import UUID

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

_IMMUTABLE = frozenset({str, int, float, bool, type(None), datetime, date, UUID, Decimal})


class SharesImmutables(BaseModel):
    """pydantic's deep copy, leaving immutable values shared.

    The aggregate cache hands each command a deep copy of its aggregate, and copying a
    datetime or a UUID goes the slow way round (``__reduce_ex__``): several per command.
    """

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        cls = type(self)
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        fields = {
            name: value if type(value) in _IMMUTABLE else deepcopy(value, memo)
            for name, value in self.__dict__.items()
        }
        object.__setattr__(copied, "__dict__", fields)
        object.__setattr__(copied, "__pydantic_extra__", deepcopy(self.__pydantic_extra__, memo))
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        private = self.__pydantic_private__
        if private is not None:  # unset private attributes stay unset, as pydantic does
            private = {k: v for k, v in private.items() if v is not PydanticUndefined}
        object.__setattr__(copied, "__pydantic_private__", deepcopy(private, memo))
        return copied
