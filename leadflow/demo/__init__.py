"""``leadflow demo``: a seeded B2B quarter run through commands, events and projectors."""

from leadflow.demo.scenario import DEFAULT_LEADS, DEFAULT_SEED, generate_quarter
from leadflow.demo.timeline import QUARTER_DAYS, QUARTER_END, QUARTER_START

__all__ = [
    "DEFAULT_LEADS",
    "DEFAULT_SEED",
    "QUARTER_DAYS",
    "QUARTER_END",
    "QUARTER_START",
    "generate_quarter",
]
