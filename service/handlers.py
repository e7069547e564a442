"""Command handlers: one plain function per command class, in the table ``HANDLERS``.

A handler decides on the aggregates of the batch it is given (see ``service.unit_of_work``)
and returns the ids of the aggregates it touched. A refusal raises its DomainError before
anything changes. A command's id (``command_id``) is the causation id of its events; a
command without one gets a generated causation id. Whether an id was seen before is the
command ledger's business (``service.unit_of_work``), not the handlers'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar
from uuid import UUID

from domain import commands as c
from domain.aggregate import Aggregate, EventContext, generated_causation_id
from domain.deal import Deal
from domain.errors import AlreadyExists, DomainError
from domain.lead import Lead
from domain.personal_fields import PersonalData
from domain.scoring import ScoringRules
from domain.stage_model import Pipeline, StageModel
from service.ids import IdScheme, new_external_id, resolve_ref

A = TypeVar("A", bound=Aggregate)
Ids = tuple[UUID, ...]


class Setup(Protocol):
    """What a handler needs of the application."""

    @property
    def stage_model(self) -> StageModel: ...

    @property
    def scoring_rules(self) -> ScoringRules: ...

    @property
    def default_actor(self) -> str: ...

    @property
    def ids(self) -> IdScheme: ...

    @property
    def personal_data(self) -> PersonalData | None: ...


class Aggregates(Protocol):
    """What a handler works on: the aggregates of one batch of commands."""

    def exists(self, aggregate_id: UUID) -> bool: ...

    def load(self, kind: type[A], aggregate_id: UUID, ref: str) -> A: ...

    def add(self, aggregate: Aggregate) -> None: ...


Handler = Callable[[Setup, Any, Aggregates], Ids]


# --- leads ------------------------------------------------------------------------------


def capture_lead(app: Setup, cmd: c.CaptureLead, batch: Aggregates) -> Ids:
    ctx = _context(app, cmd)
    external_id = new_external_id("lead", cmd.lead)
    lead_id = app.ids.new_lead(cmd.lead)
    if not batch.exists(lead_id):
        lead = Lead.capture(
            lead_id,
            external_id,
            cmd.source,
            cmd.campaign,
            cmd.attributes,
            app.scoring_rules,
            ctx,
            cmd.occurred_at,
        )
        batch.add(lead)
        return (lead_id,)
    lead = batch.load(Lead, lead_id, cmd.lead)
    lead.refuse_if_erased("capture it again")
    attributes = cmd.attributes
    if cmd.fill_missing_only:
        attributes = {k: v for k, v in attributes.items() if k not in lead.attributes}
    lead.update_attributes(attributes, app.scoring_rules, ctx, cmd.occurred_at)
    return (lead_id,)


def record_engagement(app: Setup, cmd: c.RecordEngagement, batch: Aggregates) -> Ids:
    return _on_lead(
        app,
        cmd,
        batch,
        lambda lead, ctx: lead.record_engagement(
            cmd.event_id,
            cmd.kind,
            cmd.properties,
            cmd.source,
            cmd.campaign,
            app.scoring_rules,
            ctx,
            cmd.occurred_at,
        ),
    )


def log_contact(app: Setup, cmd: c.LogContact, batch: Aggregates) -> Ids:
    return _on_lead(
        app,
        cmd,
        batch,
        lambda lead, ctx: lead.log_contact(cmd.channel, cmd.outcome, ctx, cmd.occurred_at),
    )


def mark_mql(app: Setup, cmd: c.MarkMql, batch: Aggregates) -> Ids:
    return _on_lead(
        app, cmd, batch, lambda lead, ctx: lead.mark_mql(cmd.reason, ctx, cmd.occurred_at)
    )


def accept_lead(app: Setup, cmd: c.AcceptLead, batch: Aggregates) -> Ids:
    return _on_lead(
        app,
        cmd,
        batch,
        lambda lead, ctx: lead.accept(cmd.owner, cmd.reason, ctx, cmd.occurred_at),
    )


def reject_lead(app: Setup, cmd: c.RejectLead, batch: Aggregates) -> Ids:
    return _on_lead(
        app, cmd, batch, lambda lead, ctx: lead.reject(cmd.reason, ctx, cmd.occurred_at)
    )


def recycle_lead(app: Setup, cmd: c.RecycleLead, batch: Aggregates) -> Ids:
    return _on_lead(
        app, cmd, batch, lambda lead, ctx: lead.recycle(cmd.reason, ctx, cmd.occurred_at)
    )


def disqualify_lead(app: Setup, cmd: c.DisqualifyLead, batch: Aggregates) -> Ids:
    return _on_lead(
        app, cmd, batch, lambda lead, ctx: lead.disqualify(cmd.reason, ctx, cmd.occurred_at)
    )


def reopen_lead(app: Setup, cmd: c.ReopenLead, batch: Aggregates) -> Ids:
    return _on_lead(
        app, cmd, batch, lambda lead, ctx: lead.reopen(cmd.reason, ctx, cmd.occurred_at)
    )


def qualify_lead(app: Setup, cmd: c.QualifyLead, batch: Aggregates) -> Ids:
    return _on_lead(app, cmd, batch, lambda lead, ctx: lead.qualify(cmd.bant, ctx, cmd.occurred_at))


def fast_track(app: Setup, cmd: c.FastTrack, batch: Aggregates) -> Ids:
    return _on_lead(
        app,
        cmd,
        batch,
        lambda lead, ctx: lead.fast_track(cmd.to_stage, cmd.reason, ctx, cmd.occurred_at),
    )


def forget_lead(app: Setup, cmd: c.ForgetLead, batch: Aggregates) -> Ids:
    return _on_lead(app, cmd, batch, lambda lead, ctx: lead.erase(cmd.reason, ctx, cmd.occurred_at))


# --- deals ------------------------------------------------------------------------------


def open_deal(app: Setup, cmd: c.OpenDeal, batch: Aggregates) -> Ids:
    ctx = _context(app, cmd)
    external_id = new_external_id("deal", cmd.deal)
    deal_id = app.ids.deal(cmd.deal)
    pipeline = _pipeline(app, cmd.pipeline)
    if batch.exists(deal_id):
        existing = batch.load(Deal, deal_id, cmd.deal)
        raise AlreadyExists("deal", cmd.deal, f"opened as {existing.id}")
    lead = (
        batch.load(Lead, resolve_ref(cmd.lead, app.ids.lead, batch.exists), cmd.lead)
        if cmd.lead
        else None
    )
    converted_at = (
        lead.convert(deal_id, external_id, cmd.fast_track, ctx, cmd.occurred_at)
        if lead is not None
        else None
    )
    deal = Deal.open(
        deal_id,
        external_id,
        pipeline,
        cmd.amount,
        cmd.currency,
        lead.id if lead else None,
        lead.external_id if lead else None,
        cmd.owner or (lead.owner if lead else None),
        cmd.expected_close_date,
        ctx,
        cmd.occurred_at,
        converted_at=converted_at,
    )
    batch.add(deal)
    return (lead.id, deal_id) if lead else (deal_id,)


def move_deal(app: Setup, cmd: c.MoveDeal, batch: Aggregates) -> Ids:
    return _on_deal(
        app,
        cmd,
        batch,
        lambda deal, ctx: deal.move(cmd.stage, _pipeline(app, deal.pipeline), ctx, cmd.occurred_at),
    )


def win_deal(app: Setup, cmd: c.WinDeal, batch: Aggregates) -> Ids:
    return _on_deal(
        app,
        cmd,
        batch,
        lambda deal, ctx: deal.win(cmd.amount, _pipeline(app, deal.pipeline), ctx, cmd.occurred_at),
    )


def lose_deal(app: Setup, cmd: c.LoseDeal, batch: Aggregates) -> Ids:
    return _on_deal(
        app,
        cmd,
        batch,
        lambda deal, ctx: deal.lose(
            cmd.reason, cmd.competitor, _pipeline(app, deal.pipeline), ctx, cmd.occurred_at
        ),
    )


def reopen_deal(app: Setup, cmd: c.ReopenDeal, batch: Aggregates) -> Ids:
    return _on_deal(
        app,
        cmd,
        batch,
        lambda deal, ctx: deal.reopen(
            cmd.stage, cmd.reason, _pipeline(app, deal.pipeline), ctx, cmd.occurred_at
        ),
    )


def update_deal(app: Setup, cmd: c.UpdateDeal, batch: Aggregates) -> Ids:
    def change(deal: Deal, ctx: EventContext) -> None:
        if cmd.amount is not None or cmd.currency is not None:
            deal.change_amount(
                deal.amount if cmd.amount is None else cmd.amount,
                cmd.currency,
                ctx,
                cmd.occurred_at,
            )
        if "expected_close_date" in cmd.model_fields_set:
            deal.change_close_date(cmd.expected_close_date, ctx, cmd.occurred_at)

    return _on_deal(app, cmd, batch, change)


HANDLERS: Mapping[type[c.Command], Handler] = {
    c.CaptureLead: capture_lead,
    c.RecordEngagement: record_engagement,
    c.LogContact: log_contact,
    c.MarkMql: mark_mql,
    c.AcceptLead: accept_lead,
    c.ReopenLead: reopen_lead,
    c.RejectLead: reject_lead,
    c.RecycleLead: recycle_lead,
    c.DisqualifyLead: disqualify_lead,
    c.QualifyLead: qualify_lead,
    c.FastTrack: fast_track,
    c.ForgetLead: forget_lead,
    c.OpenDeal: open_deal,
    c.MoveDeal: move_deal,
    c.WinDeal: win_deal,
    c.LoseDeal: lose_deal,
    c.ReopenDeal: reopen_deal,
    c.UpdateDeal: update_deal,
}


# --- shared steps -----------------------------------------------------------------------


def _pipeline(app: Setup, name: str | None) -> Pipeline:
    try:
        return app.stage_model.pipeline(name)
    except KeyError:
        known = ", ".join(sorted(app.stage_model.pipelines))
        msg = f"unknown pipeline {name!r}; the stage model defines: {known}"
        raise DomainError(msg) from None


def _context(app: Setup, cmd: c.Command) -> EventContext:
    causation = cmd.command_id or generated_causation_id()
    return EventContext(
        actor=cmd.actor or app.default_actor,
        on_behalf_of=cmd.on_behalf_of,
        causation_id=causation,
        correlation_id=cmd.correlation_id or causation,
        backdated=cmd.backdated,
        personal_data=app.personal_data,
    )


def _on_lead(
    app: Setup,
    cmd: c.LeadCommand,
    batch: Aggregates,
    action: Callable[[Lead, EventContext], Any],
) -> Ids:
    lead_id = resolve_ref(cmd.lead, app.ids.lead, batch.exists)
    return _on_aggregate(app, Lead, lead_id, cmd.lead, cmd, batch, action)


def _on_deal(
    app: Setup,
    cmd: c.DealCommand,
    batch: Aggregates,
    action: Callable[[Deal, EventContext], Any],
) -> Ids:
    deal_id = resolve_ref(cmd.deal, app.ids.deal, batch.exists)
    return _on_aggregate(app, Deal, deal_id, cmd.deal, cmd, batch, action)


def _on_aggregate(
    app: Setup,
    kind: type[A],
    aggregate_id: UUID,
    ref: str,
    cmd: c.Command,
    batch: Aggregates,
    action: Callable[[A, EventContext], Any],
) -> Ids:
    ctx = _context(app, cmd)
    aggregate = batch.load(kind, aggregate_id, ref)
    action(aggregate, ctx)
    return (aggregate_id,)
