"""What no read-model database can store is refused before it reaches one, by position."""

from __future__ import annotations

from typing import Any

import pytest

from projections.store import UnstorableValue, _check_storable


@pytest.mark.parametrize(
    "params",
    [
        (),
        ("plain", 1, None, 2.5, b"bytes"),
        ("ünïcödé ✓", -(2**63), 2**63 - 1),
        (["a", "b"], [1, 2], "c"),
    ],
)
def test_storable_parameters_pass(params: tuple[Any, ...]) -> None:
    _check_storable(params)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (("ok", "nul\x00here"), "parameter 2 contains a NUL character"),
        (("ok", "lone \ud800 surrogate"), "parameter 2 is not valid Unicode text"),
        ((1, 2**63), "parameter 2 does not fit in 64 bits"),
        ((-(2**63) - 1,), "parameter 1 does not fit in 64 bits"),
        (("x", ["fine", "bad\x00"]), "parameter 2 contains a NUL character"),
        (("x", [1, 2**64]), "parameter 2 does not fit in 64 bits"),
    ],
)
def test_unstorable_parameter_is_named(params: tuple[Any, ...], message: str) -> None:
    with pytest.raises(UnstorableValue, match=message):
        _check_storable(params)
