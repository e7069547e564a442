"""Subcommands of the stream: ``relay``, ``ingest``, ``engage``, ``stream-stats``, ``dlq``.

``relay`` and ``ingest`` are long-running processes (Kafka mode): they run until SIGTERM
or SIGINT, then finish the batch in hand, flush and exit 0. ``--once`` stops when caught
up, ``--max-seconds`` after that many seconds. Both log a readiness line
(``relay_active`` / ``relay_standby``, ``ingest_ready``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adapters.settings import Settings
from adapters.stopping import ProcessStop
from consumers.ingest.apply import IngestLimits
from consumers.ingest.ledger import IngestLedger
from consumers.ingest.submit import SubmitResult, submit_payload
from consumers.relay.position import read_positions
from consumers.relay.publisher import RelayError
from leadflow import bootstrap
from leadflow.cli.tables import Cell, render_table
from leadflow.errors import CliError


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    relay = subparsers.add_parser(
        "relay",
        help="publish stored events to Kafka (one active relay per event store)",
        description="Publish every stored event to the events topic and the public "
        "integration events to the qualification topic. A second relay waits as a standby.",
    )
    _add_run_options(relay, "stop once every stored event is published")
    relay.set_defaults(handler=_relay)

    ingest = subparsers.add_parser(
        "ingest",
        help="consume engagement records from Kafka (invalid ones go to the DLQ topic)",
    )
    _add_run_options(ingest, "stop once the topic is read to its end")
    ingest.add_argument("--group", help="consumer group (default: LEADFLOW_STREAM_INGEST_GROUP)")
    ingest.set_defaults(handler=_ingest)

    engage = subparsers.add_parser(
        "engage",
        help="submit engagement records without Kafka (JSON Lines or one JSON object)",
    )
    engage.add_argument(
        "--file", required=True, metavar="F", help="file of engagement records, or - for stdin"
    )
    engage.add_argument("--json", action="store_true", help="print one result per record")
    engage.set_defaults(handler=_engage)

    stats = subparsers.add_parser(
        "stream-stats", help="relay position and engagement ingest counts"
    )
    stats.add_argument("--group", help="only this consumer group")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(handler=_stream_stats)

    dlq = subparsers.add_parser("dlq", help="the most recent dead-lettered engagement records")
    dlq.add_argument("--group", help="only this consumer group")
    dlq.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    dlq.add_argument("--json", action="store_true", help="print JSON Lines")
    dlq.set_defaults(handler=_dlq)


def _add_run_options(parser: argparse.ArgumentParser, once_help: str) -> None:
    parser.add_argument("--once", action="store_true", help=once_help)
    parser.add_argument(
        "--max-seconds", type=float, metavar="N", help="stop after N seconds (for tests)"
    )


# --- long-running processes -----------------------------------------------------------


def _require_kafka(settings: Settings, what: str) -> None:
    if not settings.kafka_mode:
        msg = f"{what} needs Kafka: set LEADFLOW_KAFKA_BOOTSTRAP (host:port of a broker)"
        raise CliError(msg)


def _relay(args: argparse.Namespace, settings: Settings) -> int:
    _require_kafka(settings, "leadflow relay")
    with ProcessStop(args.max_seconds).on_signals() as stop:
        app = bootstrap.open_application_patiently(settings, "relay", stop)
        if app is None:
            return 0
        with app:
            try:
                bootstrap.relay(settings, settings.stream, app, stop=stop).run(once=args.once)
            except RelayError as error:
                raise CliError(str(error)) from error
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    _require_kafka(settings, "leadflow ingest")
    with ProcessStop(args.max_seconds).on_signals() as stop:
        app = bootstrap.open_application_patiently(settings, "engagement-ingest", stop)
        if app is None:
            return 0
        with app:
            ingest = bootstrap.engagement_ingest(
                settings, settings.stream, app, group=args.group, stop=stop
            )
            ingest.run(once=args.once)
    return 0


# --- engage ---------------------------------------------------------------------------


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    if not path.is_file():
        msg = f"--file {file}: no such file"
        raise CliError(msg)
    return path.read_bytes()


def _engage(args: argparse.Namespace, settings: Settings) -> int:
    payload = _read_input(args.file)
    limits = IngestLimits.from_settings(settings.stream)
    with bootstrap.open_application(settings, default_actor="cli:engage") as app:
        results = submit_payload(app, payload, limits)
    if not results:
        msg = f"--file {args.file}: no engagement records in it"
        raise CliError(msg)
    if args.json:
        for result in results:
            print(json.dumps(asdict(result), ensure_ascii=False))
    else:
        _print_engage_report(args.file, results)
    return 1 if any(r.status == "invalid" for r in results) else 0


def _print_engage_report(file: str, results: list[SubmitResult]) -> None:
    source = "stdin" if file == "-" else file
    for result in results:
        if result.status == "invalid":
            print(f"{source}: line {result.line}: {result.reason}", file=sys.stderr)
    counts = {s: sum(r.status == s for r in results) for s in ("accepted", "duplicate", "invalid")}
    print(
        f"{len(results)} records: {counts['accepted']} accepted, "
        f"{counts['duplicate']} duplicate, {counts['invalid']} invalid"
    )


# --- queries --------------------------------------------------------------------------


def _stream_stats(args: argparse.Namespace, settings: Settings) -> int:
    with (
        bootstrap.open_application(settings, default_actor="cli") as app,
        bootstrap.open_store_db(settings) as db,
    ):
        latest = app.recorder.max_notification_id() or 0
        positions = read_positions(db)
        counts = IngestLedger(db).counts(args.group)
    if args.json:
        data = {
            "latest_notification_id": latest,
            "relay": [
                {"topic": t, "position": p, "behind": latest - p} for t, p in positions.items()
            ],
            "ingest": [
                {"group": g, "topic": t, **asdict(c), "consumed": c.consumed}
                for (g, t), c in counts.items()
            ],
        }
        print(json.dumps(data, indent=2))
        return 0
    print(
        render_table(
            ["relay topic", "position", "latest", "behind"],
            [[t, p, latest, latest - p] for t, p in positions.items()]
            or [["-", None, latest, None]],
            title="relay",
        )
    )
    print()
    rows: list[list[Cell]] = [
        [g, t, c.accepted, c.duplicate, c.dead_lettered, c.consumed] for (g, t), c in counts.items()
    ]
    print(
        render_table(
            ["group", "topic", "accepted", "duplicate", "dead-lettered", "consumed"],
            rows or [["-", "-", 0, 0, 0, 0]],
            title="engagement ingest",
        )
    )
    return 0


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        msg = f"--limit {args.limit}: must be at least 1"
        raise CliError(msg)
    with bootstrap.open_store_db(settings) as db:
        letters = IngestLedger(db).dead_letters(args.group, args.limit)
    if args.json:
        for letter in letters:
            print(json.dumps(asdict(letter), ensure_ascii=False))
        return 0
    if not letters:
        print("no dead-lettered engagement records")
        return 0
    for letter in letters:
        where = f"{letter.topic}/{letter.partition}@{letter.offset}"
        print(f"{where}  group={letter.group}  event_id={letter.event_id or '-'}")
        print(f"  {letter.problem}: {letter.reason}")
    return 0
