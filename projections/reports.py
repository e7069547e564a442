"""The reports managers look at, as pydantic models (``model_dump(mode="json")`` is the
JSON the CLI prints): funnel, pipeline health (KPIs), pipeline positions, stalled list.

In embedded mode, catch the store up first (``consumers.projection_runner.catch_up``);
for a past moment, run them on ``projections.as_of.read_model_as_of(app, at)``.
"""

from __future__ import annotations

from projections.board import (
    Position,
    StalledDeal,
    StalledLead,
    StalledReport,
    pipeline_positions,
    stalled_report,
)
from projections.funnel import (
    FUNNEL_STAGES,
    FunnelDeals,
    FunnelExits,
    FunnelFilters,
    FunnelReport,
    FunnelStage,
    funnel_report,
)
from projections.kpis import KpiReport, StageValue, kpi_report

__all__ = [
    "FUNNEL_STAGES",
    "FunnelDeals",
    "FunnelExits",
    "FunnelFilters",
    "FunnelReport",
    "FunnelStage",
    "KpiReport",
    "Position",
    "StageValue",
    "StalledDeal",
    "StalledLead",
    "StalledReport",
    "funnel_report",
    "kpi_report",
    "pipeline_positions",
    "stalled_report",
]
