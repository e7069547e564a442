"""Lead segments by company size, from the lead's ``employees`` attribute.

    smb          fewer than 50 employees
    mid_market   50 to 999
    enterprise   1000 or more
    unknown      no ``employees`` attribute, or one that is not a number

Numbers may arrive as text: "250", "1,200", "10k", "10000+", "51-200" (a range counts as
its midpoint).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Literal

Segment = Literal["smb", "mid_market", "enterprise", "unknown"]
SEGMENTS: tuple[Segment, ...] = ("smb", "mid_market", "enterprise", "unknown")

_NOISE = re.compile(r"[\s,_]")
_SCALES = {"k": 1e3, "m": 1e6}


def employee_count(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float | Decimal):
        number = float(raw)
        return number if math.isfinite(number) and number >= 0 else None
    if not isinstance(raw, str):
        return None
    text = _NOISE.sub("", raw.lower()).removesuffix("+")
    low, sep, high = text.partition("-")
    if sep and low:
        bounds = _scaled(low), _scaled(high)
        if bounds[0] is None or bounds[1] is None:
            return None
        return (bounds[0] + bounds[1]) / 2
    return _scaled(text)


def _scaled(text: str) -> float | None:
    factor = _SCALES.get(text[-1:], 1.0)
    if factor != 1.0:
        text = text[:-1]
    try:
        number = float(text) * factor
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def segment_of(employees: float | None) -> Segment:
    if employees is None:
        return "unknown"
    if employees < 50:
        return "smb"
    if employees < 1000:
        return "mid_market"
    return "enterprise"
