"""Amounts in the read models: integers in the minor units of their currency (ISO 4217).

Events keep an amount exactly as given (up to six decimals). A read model rounds it, half
to even, to its currency's minor unit: ¥1,234.5 is 1235 yen (exponent 0), 9225.225 PEN is
922522 céntimos (exponent 2), 1.2345 KWD is 1234 fils (exponent 3). A code the table
does not list has two decimals. Reports sum minor units per currency (exact integers) and
only then turn each sum into major units; amounts in several currencies are added without
conversion.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import structlog

from adapters.mapper import MAX_STORED_INT

log = structlog.get_logger("leadflow.projections.money")

MAX_MINOR = MAX_STORED_INT  # a read-model integer column

DEFAULT_EXPONENT = 2
# ISO 4217 currencies whose minor unit is not 1/100 (list of 2024).
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has."""
    return _EXPONENTS.get(currency.upper(), DEFAULT_EXPONENT)


class AmountOutOfRange(ValueError):
    """An amount whose minor units do not fit a read model's 64-bit integer."""


def to_minor(amount: Decimal, currency: str, *, deal_id: str) -> int:
    """The amount in the currency's minor units, rounded half to even."""
    scaled = amount.scaleb(exponent(currency))
    whole = int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))
    if abs(whole) > MAX_MINOR:
        msg = f"deal {deal_id}: amount of {len(str(whole))} digits in minor units is too large"
        raise AmountOutOfRange(msg)
    if whole != scaled:
        log.info("amount_rounded_to_minor_unit", deal_id=deal_id, currency=currency)
    return whole


def major(minor: int, currency: str) -> float:
    """Minor units as a float amount in the major unit, for reports."""
    scale: int = 10 ** exponent(currency)
    return minor / scale


def major_sum(minor_by_currency: dict[str, int]) -> float:
    """Amounts kept per currency in minor units, summed in major units (unconverted)."""
    ordered = sorted(minor_by_currency.items())
    return sum((major(minor, currency) for currency, minor in ordered), 0.0)
