"""Reports and projectors: ``funnel``, ``kpis``, ``pipeline``, ``stalled``, ``project``,
``rebuild``, ``verify``.

In embedded mode (no Kafka configured) every report first catches the read model up with
the event store, so it reflects everything stored. ``--as-of T`` computes the report
from the events that occurred (business time) at or before T instead.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from kafka.errors import KafkaError
from pydantic import BaseModel

from adapters.kafka_retention import FOREVER
from adapters.settings import Settings
from adapters.stopping import ProcessStop
from consumers.projection.runner import add_run_arguments
from leadflow.bootstrap import (
    open_application,
    open_read_model,
    rebuild,
    run_projector,
    verify_signed_log,
)
from leadflow.cli.signed_log import render_log_verification
from leadflow.cli.tables import Cell, render_table
from leadflow.errors import CliError
from projections.catch_up import catch_up
from projections.frozen_aggregates import WAY_OUT
from projections.reports import (
    FunnelFilters,
    FunnelReport,
    KpiReport,
    Position,
    StalledReport,
    funnel_report,
    kpi_report,
    pipeline_positions,
    stalled_report,
)
from projections.reports import funnel as funnel_module
from projections.reports import kpis as kpis_module
from projections.reports.as_of import past_read_model
from projections.reports.positions import __doc__ as positions_doc
from projections.reports.stalled import __doc__ as stalled_doc
from projections.segments import SEGMENTS
from projections.store import ReadModelError, ReadModelStore
from projections.verify import Verification, verify_read_model
from service.application import LeadflowApp
from service.lead_history import parse_as_of

log = structlog.get_logger("leadflow.cli.reports")

EXIT_VERIFY_FAILED = 3
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
Handler = Callable[[argparse.Namespace, Settings], int]


# --- arguments ----------------------------------------------------------------------------


def _as_of(text: str) -> datetime:
    try:
        return parse_as_of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _cohort(text: str) -> str:
    if not _MONTH.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month in the form YYYY-MM")
    return text


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _add_as_of(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="T",
        help=f"{what} as it stood at business time T (ISO 8601 date or date-time, UTC unless "
        "an offset is given; a bare date means the end of that day)",
    )


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _report_parser(
    subparsers: argparse._SubParsersAction[Any], name: str, summary: str, epilog: str | None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog.replace("``", "") if epilog else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    funnel = _report_parser(
        subparsers, "funnel", "lead funnel: reached, current, conversion", funnel_module.__doc__
    )
    funnel.add_argument("--cohort", type=_cohort, metavar="YYYY-MM", help="capture month (UTC)")
    funnel.add_argument("--source", metavar="S", help="lead source")
    funnel.add_argument("--campaign", metavar="C", help="lead campaign")
    funnel.add_argument("--segment", choices=SEGMENTS, help="company size segment")
    _add_as_of(funnel, "the funnel")
    _add_json(funnel)
    funnel.set_defaults(handler=_cli_errors(funnel_command))

    kpis = _report_parser(subparsers, "kpis", "pipeline health (deal KPIs)", kpis_module.__doc__)
    _add_as_of(kpis, "pipeline health")
    _add_json(kpis)
    kpis.set_defaults(handler=_cli_errors(kpis_command))

    pipeline = _report_parser(
        subparsers, "pipeline", "where every lead and deal stands (pipeline board)", positions_doc
    )
    pipeline.add_argument("--kind", choices=("lead", "deal"), help="only leads or only deals")
    pipeline.add_argument("--stage", metavar="S", help="lifecycle or pipeline stage")
    pipeline.add_argument("--owner", metavar="O", help="owner")
    pipeline.add_argument("--limit", type=_positive, default=50, metavar="N", help="default 50")
    _add_as_of(pipeline, "the board")
    _add_json(pipeline)
    pipeline.set_defaults(handler=_cli_errors(pipeline_command))

    stalled = _report_parser(
        subparsers, "stalled", "MQLs waiting past the SLA, deals idle too long", stalled_doc
    )
    _add_as_of(stalled, "the stalled list")
    _add_json(stalled)
    stalled.set_defaults(handler=_cli_errors(stalled_command))

    project = _report_parser(
        subparsers,
        "project",
        "run the projectors into the read model",
        "Embedded mode: catch up with the event store (--follow: keep following it).\n"
        "Kafka mode: consume leadflow.events.v1 in consumer group leadflow.projector until\n"
        "SIGTERM, --max-seconds or --until-idle (LEADFLOW_PROJECTOR_* adjust topic, group,\n"
        "batch size).",
    )
    add_run_arguments(project)
    project.set_defaults(handler=_cli_errors(project_command))

    rebuild_parser = _report_parser(
        subparsers,
        "rebuild",
        "drop the read model and rebuild it",
        "Stop running projectors first. Default source: Kafka offset zero in Kafka mode, the\n"
        f"event store otherwise. Exit status {EXIT_VERIFY_FAILED} when stored events could not "
        "be projected\n(a damaged store: they are kept in rm_dead_letters, verify names each).",
    )
    source = rebuild_parser.add_mutually_exclusive_group()
    source.add_argument("--from-store", action="store_true", help="replay the event store")
    source.add_argument(
        "--from-kafka",
        action="store_true",
        help="consume leadflow.events.v1 from offset zero (needs its retention to be -1)",
    )
    rebuild_parser.add_argument(
        "--max-seconds", type=float, metavar="N", help="--from-kafka: give up after N seconds"
    )
    rebuild_parser.set_defaults(handler=_cli_errors(rebuild_command))

    verify = _report_parser(
        subparsers,
        "verify",
        "compare the read model with a rebuild; verify every hash chain",
        "Rebuilds the read model from the event store into a scratch store, compares the\n"
        "fact tables row by row and verifies every aggregate's hash chain. Exit status 0\n"
        f"when all agree, {EXIT_VERIFY_FAILED} on any difference or damaged stored event "
        "(each is printed:\na damaged event with its aggregate, version and cause), 1 only "
        "on leadflow's own errors.\nIn Kafka mode run the relay and `leadflow project "
        "--until-idle` first: a lagging\nread model shows up as differences.",
    )
    verify.set_defaults(handler=_cli_errors(verify_command))


def _cli_errors(handler: Handler) -> Handler:
    """Infrastructure failures become one-line CLI errors."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handler(args, settings)
        except ReadModelError as error:
            raise CliError(str(error)) from None
        except psycopg.OperationalError as error:
            raise CliError(f"PostgreSQL: {' '.join(str(error).split())}") from None
        except KafkaError as error:
            bootstrap = settings.kafka.bootstrap
            raise CliError(f"Kafka ({bootstrap}): {type(error).__name__}: {error}") from None

    return wrapped


# --- stores -------------------------------------------------------------------------------


@contextmanager
def _event_store(settings: Settings) -> Iterator[LeadflowApp]:
    store = settings.store
    if store.dsn is None and not store.sqlite_event_store.exists():
        msg = (
            f"no event store at {store.sqlite_event_store} "
            "(set LEADFLOW_DATA_DIR, or run leadflow demo / leadflow import first)"
        )
        raise CliError(msg)
    app = open_application(settings)
    try:
        yield app
    finally:
        app.close()


@contextmanager
def report_store(settings: Settings, as_of: datetime | None = None) -> Iterator[ReadModelStore]:
    """The read model a report runs on: as of a past moment, or the live one (caught up
    with the event store first in embedded mode)."""
    with ExitStack() as stack:
        live = stack.enter_context(open_read_model(settings))
        if settings.kafka_mode and as_of is None:
            yield live
            return
        app = stack.enter_context(_event_store(settings))
        if not settings.kafka_mode:
            catch_up(app, live)
        yield live if as_of is None else stack.enter_context(past_read_model(app, as_of, live))


# --- output -------------------------------------------------------------------------------


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def _write_json(value: BaseModel | Sequence[BaseModel]) -> None:
    data = (
        value.model_dump(mode="json")
        if isinstance(value, BaseModel)
        else [v.model_dump(mode="json") for v in value]
    )
    _write(json.dumps(data, indent=2, ensure_ascii=False))


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _title(name: str, as_of: datetime | None, extra: str = "") -> str:
    when = f" as of {as_of.isoformat()}" if as_of else ""
    return f"{name}{when}{extra}"


# --- handlers -----------------------------------------------------------------------------


def funnel_command(args: argparse.Namespace, settings: Settings) -> int:
    filters = FunnelFilters(
        cohort=args.cohort, source=args.source, campaign=args.campaign, segment=args.segment
    )
    with report_store(settings, args.as_of) as store:
        report = funnel_report(store, filters)
    if args.json:
        _write_json(report)
    else:
        shown = ", ".join(f"{k}={v}" for k, v in filters.model_dump(exclude_none=True).items())
        _write(render_funnel(report, _title("Funnel", args.as_of, f" ({shown})" if shown else "")))
    return 0


def render_funnel(report: FunnelReport, title: str = "Funnel") -> str:
    rows: list[list[Cell]] = [
        [
            s.stage,
            s.reached,
            s.current,
            _pct(s.conversion_from_previous),
            _pct(s.cumulative_conversion),
            s.median_days_in_stage,
            s.p90_days_in_stage,
            s.exited_to_recycled,
            s.exited_to_disqualified,
        ]
        for s in report.stages
    ]
    headers = [
        "stage",
        "reached",
        "current",
        "conv % prev",
        "conv % total",
        "median days",
        "p90 days",
        "to recycled",
        "to disqualified",
    ]
    exits, deals = report.exits, report.deals
    return "\n".join(
        [
            render_table(headers, rows, title=title),
            "",
            f"Now recycled: {exits.recycled:,}   now disqualified: {exits.disqualified:,}",
            f"Deals: opened {deals.opened:,}, open {deals.open:,}, won {deals.won:,}, "
            f"lost {deals.lost:,}",
        ]
    )


def kpis_command(args: argparse.Namespace, settings: Settings) -> int:
    with report_store(settings, args.as_of) as store:
        report = kpi_report(store)
    if args.json:
        _write_json(report)
    else:
        _write(render_kpis(report, _title("Pipeline health", args.as_of)))
    return 0


def render_kpis(report: KpiReport, title: str = "Pipeline health") -> str:
    currency = "/".join(report.currencies) or "-"
    metrics: list[list[Cell]] = [
        ["open deals", report.open_deals],
        ["won deals", report.won_deals],
        ["lost deals", report.lost_deals],
        [f"avg won deal size ({currency})", report.avg_deal_size],
        ["win rate %", _pct(report.win_rate)],
        ["avg sales cycle (days)", report.avg_sales_cycle_days],
        [f"sales velocity ({currency}/day)", report.sales_velocity_per_day],
        [f"weighted pipeline ({currency})", report.weighted_pipeline],
    ]
    stages: list[list[Cell]] = [
        [s.pipeline, s.stage, s.count, s.value, s.weighted_value] for s in report.by_stage
    ]
    return "\n".join(
        [
            render_table(["metric", "value"], metrics, title=title),
            "",
            render_table(
                ["pipeline", "stage", "deals", "value", "weighted value"],
                stages,
                title="By stage",
            ),
        ]
    )


def pipeline_command(args: argparse.Namespace, settings: Settings) -> int:
    with report_store(settings, args.as_of) as store:
        positions = pipeline_positions(
            store, args.kind, args.stage, args.owner, args.limit, now=args.as_of
        )
    if args.json:
        _write_json(positions)
    else:
        _write(render_positions(positions, _title("Pipeline positions", args.as_of)))
    return 0


def render_positions(positions: list[Position], title: str = "Pipeline positions") -> str:
    rows: list[list[Cell]] = [
        [
            p.kind,
            p.external_id,
            p.stage if p.pipeline is None else f"{p.pipeline}/{p.stage}",
            p.funnel_stage,
            p.owner,
            p.score,
            p.amount,
            p.weighted_amount,
            _when(p.entered_stage_at),
            _when(p.last_activity_at),
            "STALLED" if p.stalled else "",
        ]
        for p in positions
    ]
    headers = [
        "kind",
        "external id",
        "stage",
        "funnel",
        "owner",
        "score",
        "amount",
        "weighted",
        "in stage since",
        "last activity",
        "",
    ]
    return render_table(headers, rows, title=title)


def stalled_command(args: argparse.Namespace, settings: Settings) -> int:
    with report_store(settings, args.as_of) as store:
        report = stalled_report(store, args.as_of or datetime.now(UTC))
    if args.json:
        _write_json(report)
    else:
        _write(render_stalled(report))
    return 0


def render_stalled(report: StalledReport) -> str:
    leads: list[list[Cell]] = [
        [
            s.external_id,
            s.source,
            s.campaign,
            s.score,
            _when(s.mql_since),
            s.hours_waiting,
        ]
        for s in report.leads
    ]
    deals: list[list[Cell]] = [
        [
            d.external_id,
            f"{d.pipeline}/{d.stage}",
            d.owner,
            d.amount,
            _when(d.last_activity_at),
            d.days_idle,
            d.stall_after_days,
        ]
        for d in report.deals
    ]
    sla = report.leads[0].sla_hours if report.leads else None
    return "\n".join(
        [
            render_table(
                ["lead", "source", "campaign", "score", "MQL since", "hours waiting"],
                leads,
                title=f"Stalled MQLs as of {_when(report.as_of)} UTC (not accepted within the "
                f"SLA{f' of {sla:g} h' if sla else ''}): {len(report.leads):,}",
            ),
            "",
            render_table(
                ["deal", "stage", "owner", "amount", "last activity", "days idle", "stall after"],
                deals,
                title=f"Stalled deals: {len(report.deals):,}",
            ),
        ]
    )


def project_command(args: argparse.Namespace, settings: Settings) -> int:
    stop = ProcessStop(args.max_seconds)
    # A one-off embedded catch-up keeps Ctrl-C's default; a following run stops cleanly.
    with stop.on_signals() if settings.kafka_mode or args.follow else nullcontext(stop):
        applied = run_projector(settings, stop, follow_log=args.follow, until_idle=args.until_idle)
    _write(f"projected {applied:,} events")
    return 0


def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    # a topic with bounded retention no longer holds the oldest events: only the store does
    whole_topic = settings.kafka.events_retention_ms == FOREVER
    from_kafka = args.from_kafka or (settings.kafka_mode and whole_topic and not args.from_store)
    if from_kafka and not settings.kafka_mode:
        raise CliError("--from-kafka needs Kafka: set LEADFLOW_KAFKA_BOOTSTRAP")
    if from_kafka and not whole_topic:
        raise CliError(
            "--from-kafka needs every event on the events topic, but its retention is "
            f"bounded (LEADFLOW_KAFKA_EVENTS_RETENTION_MS={settings.kafka.events_retention_ms}):"
            " rebuild --from-store"
        )
    if (
        not from_kafka
        and settings.store.dsn is None
        and not settings.store.sqlite_event_store.exists()
    ):
        raise CliError(f"no event store at {settings.store.sqlite_event_store} to rebuild from")
    applied = rebuild(settings, "kafka" if from_kafka else "store", max_seconds=args.max_seconds)
    _write(
        f"rebuilt the read model from {'Kafka' if from_kafka else 'the event store'}: "
        f"{applied:,} events"
    )
    unprojected = 0 if from_kafka else _dead_letters(settings)
    if unprojected:  # only a damaged stored event is not projected from the store
        print(
            f"leadflow rebuild: {unprojected:,} stored events could not be projected (kept in "
            "rm_dead_letters): the event store is damaged; leadflow verify names each",
            file=sys.stderr,
        )
        return EXIT_VERIFY_FAILED
    return 0


def _dead_letters(settings: Settings) -> int:
    with open_read_model(settings) as store, store.read() as tx:
        return int(tx.execute("SELECT COUNT(*) FROM rm_dead_letters")[0][0])


def verify_command(args: argparse.Namespace, settings: Settings) -> int:
    with _event_store(settings) as app, open_read_model(settings) as live:
        until = None
        if not settings.kafka_mode:
            catch_up(app, live)
            until = live.last_notification_id()
        result = verify_read_model(app, live, until=until)
        signed_log = verify_signed_log(settings, app)
    _write(render_log_verification(signed_log))
    _write(render_verification(result, kafka_mode=settings.kafka_mode, signed_log_ok=signed_log.ok))
    return 0 if result.ok and signed_log.ok else EXIT_VERIFY_FAILED


def render_verification(
    result: Verification, *, kafka_mode: bool = False, signed_log_ok: bool = True
) -> str:
    lines = [f"difference: {d}" for d in result.differences]
    lines += [f"broken chain: {b}" for b in result.broken_chains]
    lines += [f"unreadable event: {u}" for u in result.unreadable_events]
    lines += [f"frozen aggregate: {f}" for f in result.frozen_aggregates]
    lines += [f"forged snapshot: {s}" for s in result.forged_snapshots]
    if result.frozen_aggregates:
        lines.append(f"way out: {WAY_OUT}")
    if result.live_dead_letters:
        lines.append(
            f"note: {result.live_dead_letters:,} records the projector could not apply are "
            "kept in rm_dead_letters"
        )
    if result.differences and kafka_mode:
        lines.append(
            "note: in Kafka mode a read model that lags the event store shows up as differences"
        )
    verdict = "OK" if result.ok and signed_log_ok else "FAILED"
    lines.append(
        f"verify {verdict}: {result.aggregates:,} aggregates, {result.events_checked:,} events "
        f"checked; {'' if signed_log_ok else 'the signed log FAILED (above), '}"
        f"{len(result.differences):,} read-model differences, "
        f"{len(result.broken_chains):,} broken hash chains, "
        f"{len(result.unreadable_events):,} unreadable events, "
        f"{len(result.frozen_aggregates):,} frozen aggregates"
        + (f", {len(result.forged_snapshots):,} forged snapshots" * bool(result.forged_snapshots))
    )
    return "\n".join(lines)
