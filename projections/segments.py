"""Lead segments by company size, from the lead's ``employees`` attribute.

    smb          fewer than 50 employees
    mid_market   50 to 999
    enterprise   1000 or more
    unknown      no ``employees`` attribute, or one that is not a number

Numbers may arrive as text: "250", "1,200", "10k", "10000+", "51-200" (a range counts as
its midpoint).
"""

from __future__ import annotations

from typing import Literal

from domain.scoring import parse_number

Segment = Literal["smb", "mid_market", "enterprise", "unknown"]
SEGMENTS: tuple[Segment, ...] = ("smb", "mid_market", "enterprise", "unknown")


def employee_count(raw: object) -> float | None:
    """The attribute as a head count, parsed exactly as the scoring rules parse it."""
    number = parse_number(raw)
    return number if number is not None and number >= 0 else None


def segment_of(employees: float | None) -> Segment:
    if employees is None:
        return "unknown"
    if employees < 50:
        return "smb"
    if employees < 1000:
        return "mid_market"
    return "enterprise"
