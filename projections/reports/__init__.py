"""The reports managers look at, as pydantic models (``model_dump(mode="json")`` is the
JSON the CLI prints): funnel, pipeline health (KPIs), pipeline positions, stalled list.

In embedded mode, catch the store up first (``projections.catch_up.catch_up``);
for a past moment, run them on ``projections.reports.as_of.past_read_model(app, at, live)``
(or ``read_model_as_of(app, at)``, the replay of history that defines it).
"""

from __future__ import annotations

from projections.reports.funnel import (
    FUNNEL_STAGES,
    FunnelDeals,
    FunnelExits,
    FunnelFilters,
    FunnelReport,
    FunnelStage,
    funnel_report,
)
from projections.reports.kpis import KpiReport, StageValue, kpi_report
from projections.reports.positions import Position, pipeline_positions
from projections.reports.stalled import StalledDeal, StalledLead, StalledReport, stalled_report

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
