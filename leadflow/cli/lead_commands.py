"""Subcommands for people at a terminal: one per domain command, ``lead show``, ``deal show``
and ``import``.

The per-command subcommands are built from the ``SUBCOMMANDS`` table: each names its
command model and its options, and one generic handler builds the model and applies it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO, Literal
from uuid import UUID

from pydantic import ValidationError

from adapters.settings import Settings
from domain import commands as c
from domain.deal import Deal
from domain.errors import UnknownAggregate
from domain.events import Bant
from domain.lead import FAST_TRACK_TARGETS, Lead
from domain.scoring import ENGAGEMENT_KINDS
from leadflow.bootstrap import open_application
from leadflow.errors import CliError
from projections.money import exponent
from service.application import LeadflowApp
from service.command_fingerprint import sent_id_refusal, stamped_on_receipt
from service.importer import ImportAborted, ImportReport, ProgressPrinter, import_commands
from service.unit_of_work import Outcome

DEFAULT_ACTOR = os.environ.get("USER") or "cli"


@dataclass(frozen=True)
class Option:
    """One ``--flag`` filling one command field (``a.b`` for a nested one)."""

    flag: str
    field: str = ""
    required: bool = False
    help: str | None = None
    choices: tuple[str, ...] | None = None
    kind: Literal["text", "pairs", "switch"] = "text"
    metavar: str | None = None

    @property
    def path(self) -> str:
        return self.field or self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        dest = self.path.replace(".", "__")
        if self.kind == "switch":
            parser.add_argument(self.flag, dest=dest, action="store_true", help=self.help)
            return
        parser.add_argument(
            self.flag,
            dest=dest,
            required=self.required,
            choices=self.choices,
            action="append" if self.kind == "pairs" else "store",
            type=_pair if self.kind == "pairs" else str,
            metavar=self.metavar,
            help=self.help,
        )

    def value(self, args: argparse.Namespace) -> Any:
        """The option's value for the command model; None when not given."""
        given = getattr(args, self.path.replace(".", "__"))
        if self.kind == "pairs":
            return dict(given) if given else None
        if self.kind == "switch":
            return True if given else None
        return given


@dataclass(frozen=True)
class Subcommand:
    name: str
    model: type[c.LeadCommand] | type[c.DealCommand]
    help: str
    options: tuple[Option, ...] = ()

    @property
    def target(self) -> Literal["lead", "deal"]:
        return "deal" if issubclass(self.model, c.DealCommand) else "lead"


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


REASON = Option("--reason", help="why (recorded on the event)")
REASON_REQUIRED = Option("--reason", required=True, help="why (required; recorded on the event)")
SOURCE = Option("--source", help="where it came from (form, webinar, ...)")
CAMPAIGN = Option("--campaign")
AMOUNT = Option("--amount", metavar="N", help="e.g. 12000.50")
CURRENCY = Option("--currency", metavar="CUR", help="ISO 4217 code, e.g. EUR")
CLOSE_DATE = Option("--close-date", "expected_close_date", metavar="YYYY-MM-DD")
STAGE = Option("--stage", help="a stage of the deal's pipeline")
STAGE_REQUIRED = Option("--stage", required=True, help="a stage of the deal's pipeline")

SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "capture-lead",
        c.CaptureLead,
        "capture a lead (capturing it again updates its attributes)",
        (
            Option("--source", required=True, help="where the lead came from"),
            CAMPAIGN,
            Option("--attr", "attributes", kind="pairs", metavar="KEY=VALUE", help="repeatable"),
        ),
    ),
    Subcommand(
        "record-engagement",
        c.RecordEngagement,
        "record an engagement (idempotent on --event-id)",
        (
            Option("--event-id", required=True, help="the source's idempotency key"),
            Option("--kind", required=True, choices=ENGAGEMENT_KINDS),
            SOURCE,
            CAMPAIGN,
            Option("--prop", "properties", kind="pairs", metavar="KEY=VALUE", help="repeatable"),
        ),
    ),
    Subcommand(
        "log-contact",
        c.LogContact,
        "log a contact with the lead",
        (
            Option("--channel", required=True, choices=("call", "email", "social", "meeting")),
            Option("--outcome"),
        ),
    ),
    Subcommand("mark-mql", c.MarkMql, "mark a new or recycled lead as MQL by hand", (REASON,)),
    Subcommand(
        "accept-lead",
        c.AcceptLead,
        "sales accepts an MQL (it becomes SAL)",
        (Option("--owner", help="default: the actor"), REASON),
    ),
    Subcommand("reject-lead", c.RejectLead, "sales rejects an MQL", (REASON_REQUIRED,)),
    Subcommand("recycle-lead", c.RecycleLead, "send a lead back to nurturing", (REASON_REQUIRED,)),
    Subcommand("disqualify-lead", c.DisqualifyLead, "disqualify a lead", (REASON_REQUIRED,)),
    Subcommand("reopen-lead", c.ReopenLead, "reopen a disqualified lead", (REASON,)),
    Subcommand(
        "qualify-lead",
        c.QualifyLead,
        "qualify an SAL as SQL with its BANT answers",
        tuple(Option(f"--{part}", f"bant.{part}", required=True) for part in Bant.model_fields),
    ),
    Subcommand(
        "fast-track",
        c.FastTrack,
        "move a lead forward past skipped stages, recording why",
        (Option("--to", "to_stage", required=True, choices=FAST_TRACK_TARGETS), REASON_REQUIRED),
    ),
    Subcommand(
        "open-deal",
        c.OpenDeal,
        "open a deal, from an SQL lead (--lead) or directly",
        (
            Option("--amount", required=True, metavar="N", help="e.g. 12000.50"),
            CURRENCY,
            Option("--lead", metavar="LEAD", help="the lead this deal converts"),
            Option("--pipeline", help="default: the stage model's default pipeline"),
            Option("--owner"),
            CLOSE_DATE,
            Option("--fast-track", kind="switch", help="convert a lead that is not yet SQL"),
        ),
    ),
    Subcommand("move-deal", c.MoveDeal, "move a deal to another stage", (STAGE_REQUIRED,)),
    Subcommand("win-deal", c.WinDeal, "close a deal as won", (AMOUNT,)),
    Subcommand(
        "lose-deal",
        c.LoseDeal,
        "close a deal as lost",
        (REASON_REQUIRED, Option("--competitor")),
    ),
    Subcommand("reopen-deal", c.ReopenDeal, "reopen a closed deal", (STAGE, REASON)),
    Subcommand(
        "update-deal",
        c.UpdateDeal,
        "change a deal's amount, currency or expected close date",
        (AMOUNT, CURRENCY, CLOSE_DATE),
    ),
)

COMMON_OPTIONS: tuple[Option, ...] = (
    Option("--at", "occurred_at", metavar="T", help="when it happened, ISO 8601 (default: now)"),
    Option("--command-id", help="idempotency key: repeating a command id changes nothing"),
    Option("--correlation-id"),
    Option(
        "--backdated",
        kind="switch",
        help="dated before the last stage change: record it at that change, keeping --at",
    ),
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add this module's subcommands."""
    for spec in SUBCOMMANDS:
        parser = subparsers.add_parser(spec.name, help=spec.help, description=spec.help)
        parser.add_argument("ref", metavar=spec.target.upper(), help="external id or UUID")
        for option in (*spec.options, *COMMON_OPTIONS):
            option.add_to(parser)
        _add_actor(parser)
        parser.set_defaults(handler=run_command, spec=spec)
    for kind in ("lead", "deal"):
        parser = subparsers.add_parser(kind, help=f"look at a {kind}")
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        show = actions.add_parser("show", help=f"print the {kind}'s current state")
        show.add_argument("ref", metavar=kind.upper(), help="external id or UUID")
        show.add_argument("--json", action="store_true", help="the full state as JSON")
        show.set_defaults(handler=show_aggregate, kind=kind)
    _register_import(subparsers)


def _add_actor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", default=DEFAULT_ACTOR, help=f"who does it (default: {DEFAULT_ACTOR})"
    )


def _register_import(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="apply a JSON Lines file of commands",
        description="Apply a JSON Lines file of commands in order. Lines without a command_id "
        "are identified by a hash of their content, so importing a file again changes nothing.",
    )
    parser.add_argument("file", metavar="FILE", help="JSON Lines file, or - for stdin")
    parser.add_argument("--strict", action="store_true", help="stop at the first rejected line")
    parser.add_argument(
        "--progress", action="store_true", help="show progress on stderr (default: on a terminal)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_actor(parser)
    parser.set_defaults(handler=run_import)


# --- per-command subcommands --------------------------------------------------------------


def build_command(spec: Subcommand, args: argparse.Namespace) -> c.Command:
    """The command model from the parsed arguments; bad values name the option."""
    now = datetime.now(UTC)
    data: dict[str, Any] = {spec.target: args.ref, "actor": args.actor, "occurred_at": now}
    for option in (*spec.options, *COMMON_OPTIONS):
        value = option.value(args)
        if value is not None:
            *parents, leaf = option.path.split(".")
            node = data
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
    try:
        command = spec.model.model_validate(data)
    except ValidationError as error:
        flags = {o.path: o.flag for o in (*spec.options, *COMMON_OPTIONS)}
        flags[spec.target] = spec.target.upper()
        flags["actor"] = "--actor"
        problems = []
        for item in error.errors(include_url=False):
            path = ".".join(str(p) for p in item["loc"])
            problems.append(f"{flags.get(path, path)}: {item['msg']}")
        raise CliError("; ".join(problems)) from None
    refusal = sent_id_refusal(command.command_id)
    if refusal is not None:
        raise CliError(f"--command-id: {refusal}")
    # without --at the time is "now": sent again with its --command-id, the same command
    return stamped_on_receipt(command) if data["occurred_at"] is now else command


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    command = build_command(args.spec, args)
    with open_application(settings, default_actor=args.actor) as app:
        outcome = app.handle(command)
        print(describe_outcome(app, outcome))
    return 0


def describe_outcome(app: LeadflowApp, outcome: Outcome) -> str:
    """``applied: lead x now in stage mql (version 4)``; one clause per changed aggregate."""
    applied = outcome.status == "applied"
    states = "; ".join(
        f"{a.KIND} {a.external_id} {'now' if applied else 'is'} in stage {a.stage} "
        f"(version {a.version})"
        for a in (_aggregate(app, i) for i in outcome.aggregate_ids)
    )
    if applied:
        return f"applied: {states}"
    return f"duplicate: nothing changed; {states}" if states else "duplicate: nothing changed"


def _aggregate(app: LeadflowApp, aggregate_id: UUID) -> Lead | Deal:
    try:
        return app.get_lead(str(aggregate_id))
    except UnknownAggregate:
        return app.get_deal(str(aggregate_id))


# --- lead show / deal show ----------------------------------------------------------------

_HIDDEN_FIELDS = {"causations", "engagement_ids"}


def show_aggregate(args: argparse.Namespace, settings: Settings) -> int:
    with open_application(settings, default_actor=DEFAULT_ACTOR) as app:
        aggregate: Lead | Deal
        if args.kind == "lead":
            aggregate = app.get_lead(args.ref)
            rows = lead_rows(aggregate)
        else:
            aggregate = app.get_deal(args.ref)
            rows = deal_rows(aggregate, app)
    if args.json:
        state = aggregate.model_dump(mode="json", exclude=_HIDDEN_FIELDS)
        print(json.dumps({"kind": args.kind, **state}, indent=2, ensure_ascii=False))
        return 0
    width = max(len(label) for label, _ in rows)
    print(f"{args.kind} {aggregate.external_id} ({aggregate.id})")
    for label, text in rows:
        print(f"  {label.ljust(width)}  {text}")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment else "-"


def lead_rows(lead: Lead) -> list[tuple[str, str]]:
    bant = lead.bant
    return [
        ("stage", f"{lead.stage} since {_when(lead.entered_stage_at)}"),
        ("score", f"{lead.score:g} (rules {lead.rule_version or '-'})"),
        ("owner", lead.owner or "-"),
        ("source", f"{lead.source} / campaign {lead.campaign or '-'}"),
        ("reached", ", ".join(lead.reached)),
        ("engagements", str(lead.engagements.count)),
        ("bant", "; ".join(f"{k}: {v}" for k, v in bant.model_dump().items()) if bant else "-"),
        ("deals", ", ".join(str(d) for d in lead.deal_ids) or "-"),
        ("attributes", json.dumps(lead.attributes, sort_keys=True, ensure_ascii=False)),
        ("captured", _when(lead.captured_at)),
        ("last activity", _when(lead.last_activity_at)),
        ("version", str(lead.version)),
    ]


def deal_rows(deal: Deal, app: LeadflowApp) -> list[tuple[str, str]]:
    try:
        probability = f" ({app.stage_model.pipeline(deal.pipeline).probability(deal.stage):.0%})"
    except KeyError:  # the stage model no longer has this stage
        probability = ""
    status: str = deal.status
    if deal.status == "lost":
        status += f": {deal.lost_reason}" + (f" (to {deal.competitor})" if deal.competitor else "")
    lead = f"{deal.lead_external_id} ({deal.lead_id})" if deal.lead_id else "-"
    return [
        ("stage", f"{deal.stage}{probability} since {_when(deal.entered_stage_at)}"),
        ("status", status),
        ("amount", amount_text(deal.amount, deal.currency)),
        ("pipeline", deal.pipeline),
        ("owner", deal.owner or "-"),
        ("lead", lead),
        ("expected close", str(deal.expected_close_date or "-")),
        ("opened", _when(deal.opened_at)),
        ("closed", _when(deal.closed_at)),
        ("last activity", _when(deal.last_activity_at)),
        ("version", str(deal.version)),
    ]


# --- import -------------------------------------------------------------------------------


@contextmanager
def _input(file: str) -> Iterator[BinaryIO]:
    if file == "-":
        yield sys.stdin.buffer
        return
    with open(file, "rb") as stream:
        yield stream


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    printer = ProgressPrinter(sys.stderr) if args.progress or sys.stderr.isatty() else None
    with _input(args.file) as stream, open_application(settings, default_actor=args.actor) as app:
        try:
            report = import_commands(
                stream, app, strict=args.strict, progress=printer, source=args.file
            )
        except ImportAborted as error:
            print_report(error.report, as_json=args.json)
            raise CliError(str(error)) from None
        finally:
            if printer is not None:
                printer.close()
    print_report(report, as_json=args.json)
    return 1 if report.rejected else 0


def print_report(report: ImportReport, *, as_json: bool) -> None:
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    for rejection in report.rejections:
        print(f"line {rejection.line}: {rejection.reason}")
    print(
        f"applied {report.applied}, duplicate {report.duplicate}, "
        f"rejected {report.rejected}, total {report.total}"
    )
    if report.stopped_at is not None:
        print(
            f"stopped at line {report.stopped_at} (--strict); "
            f"before it: {report.applied} applied, {report.duplicate} duplicate"
        )


def amount_text(amount: Decimal, currency: str) -> str:
    """The amount as stored, with at least its currency's minor-unit decimals."""
    stored = amount.as_tuple().exponent
    decimals = -stored if isinstance(stored, int) and stored < 0 else 0
    return f"{amount:,.{max(exponent(currency), decimals)}f} {currency}"
