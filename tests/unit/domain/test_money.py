"""Read-model amounts in ISO 4217 minor units: exact, rounded half to even, never overflowing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.money import MAX_MINOR, exponent, major, major_sum, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("9225.225", "PEN", 922522),  # half to even
        ("9225.235", "PEN", 922524),
        ("1234.5", "JPY", 1234),
        ("1235.5", "jpy", 1236),
        ("1.2345", "KWD", 1234),
        ("1.23456", "CLF", 12346),
        ("10", "XYZ", 1000),  # a code not in the table has two decimals
    ],
)
def test_amounts_round_to_their_currencys_minor_unit(
    amount: str, currency: str, minor: int
) -> None:
    assert to_minor(Decimal(amount), currency, deal_id="D-1") == minor


def test_sums_stay_exact_per_currency_and_add_without_conversion() -> None:
    assert major_sum({"JPY": 1500, "EUR": 1050, "KWD": 1234}) == 1500 + 10.5 + 1.234
    assert major(922522, "PEN") == 9225.22


@given(
    st.decimals(min_value=0, max_value=Decimal("99999999999999.999999"), places=6),
    st.sampled_from(["EUR", "JPY", "KWD", "CLF"]),
)
def test_every_accepted_amount_fits_a_read_model_integer(amount: Decimal, currency: str) -> None:
    assert 0 <= to_minor(amount, currency, deal_id="D-1") <= MAX_MINOR
    assert exponent(currency) <= 4


def test_an_amount_beyond_the_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"deal D-1: .* too large"):
        to_minor(Decimal(MAX_MINOR) + 1, "EUR", deal_id="D-1")
