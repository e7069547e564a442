"""``leadflow demo``: a seeded B2B quarter run through commands, events and projectors."""

from leadflow.demo.scenario import (
    DEFAULT_LEADS,
    DEFAULT_SEED,
    QUARTER_END,
    QUARTER_START,
    generate_quarter,
)

__all__ = ["DEFAULT_LEADS", "DEFAULT_SEED", "QUARTER_END", "QUARTER_START", "generate_quarter"]
