"""``leadflow demo``: a seeded B2B quarter through commands, events and projectors."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.settings import Settings
from leadflow.cli.reports import render_funnel, render_kpis, render_stalled
from leadflow.demo import DEFAULT_LEADS, DEFAULT_SEED, QUARTER_DAYS, QUARTER_END, QUARTER_START
from leadflow.demo.progress import Progress
from leadflow.demo.runner import DemoResult, DemoTimings, run_demo
from leadflow.errors import CliError

MAX_LEADS = 200_000

_EPILOG = f"""\
The quarter runs from {QUARTER_START:%Y-%m-%d} for {QUARTER_DAYS} days of business time; the
stalled list is computed as of its end ({QUARTER_END:%Y-%m-%d %H:%M} UTC). The same seed and
size always give the same commands and the same report.

The demo writes into the data dir (LEADFLOW_DATA_DIR, default ./.leadflow) so that
`leadflow funnel`, `kpis`, `stalled` and `history` work on it afterwards. It always starts
from an empty event store: a previous demo there is replaced automatically; any other data
makes it stop, unless --fresh says to delete leadflow's files there (the event store, the
read models, the demo marker; nothing else). PostgreSQL data is never deleted.
"""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_LEADS:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and {MAX_LEADS:,}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate a seeded B2B quarter, project it and show funnel, KPIs, stalled list",
        description="Generate a realistic, seeded B2B quarter, run it through commands, "
        "events and projectors, and print the funnel, pipeline health and stalled list.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=_seed, default=DEFAULT_SEED, help="default %(default)s")
    parser.add_argument(
        "--leads", type=_count, default=DEFAULT_LEADS, help="leads to generate (%(default)s)"
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="D", help="instead of LEADFLOW_DATA_DIR / ./.leadflow"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete leadflow's files in the data dir first"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.data_dir is not None:
        settings = settings.with_store(data_dir=args.data_dir)
    progress = Progress(0)
    progress.note(
        f"generating a seeded quarter (seed {args.seed}, {args.leads:,} leads, "
        f"{QUARTER_DAYS} days from {QUARTER_START:%Y-%m-%d})"
    )
    timings = DemoTimings()
    result = run_demo(
        settings,
        seed=args.seed,
        leads=args.leads,
        fresh=args.fresh,
        progress=progress,
        timings=timings,
    )
    summary = result.summary
    progress.finish(
        f"{summary.commands:,} commands -> {summary.events:,} events in {timings.total_s:.1f} s "
        f"(commands {timings.commands_s:.1f} s, projections {timings.projections_s:.1f} s, "
        f"generation {timings.generate_s:.1f} s, reports {timings.reports_s:.1f} s)"
    )
    if args.json:
        sys.stdout.write(json.dumps(result.document(), indent=2) + "\n")
    else:
        sys.stdout.write(render_demo(result, settings) + "\n")
    if summary.refused:
        msg = (
            f"{summary.refused} generated commands were refused (see the log); the stage "
            "model or scoring rules in use may not match what the demo expects"
        )
        raise CliError(msg)
    return 0


def render_demo(result: DemoResult, settings: Settings) -> str:
    s = result.summary
    last_day = s.quarter_end - timedelta(days=1)
    store = settings.store
    where = f"schema {store.postgres_schema}" if store.dsn else str(store.data_dir)
    header = [
        f"leadflow demo · seed {s.seed} · {s.leads:,} leads · {s.commands:,} commands · "
        f"{s.events:,} events",
        f"business time {s.quarter_start:%Y-%m-%d} to {last_day:%Y-%m-%d}; "
        f"stalled as of {s.stalled_as_of:%Y-%m-%d %H:%M} UTC; data in {where}",
        "next: leadflow funnel · leadflow kpis · leadflow pipeline · "
        f"leadflow stalled --as-of {last_day:%Y-%m-%d} · "
        "leadflow history LEAD",
    ]
    sections = [
        "\n".join(header),
        render_funnel(result.funnel),
        render_kpis(result.kpis),
        render_stalled(result.stalled),
    ]
    return "\n\n".join(sections)
