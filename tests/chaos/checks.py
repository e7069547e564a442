"""What must hold after a chaos run, each check returning a verdict with its evidence.

(a) no accepted input lost: every valid engagement is recorded once on the right lead,
    every imported command is in its aggregate's history;
(b) ingest counts: every record on the engagement topic judged exactly once with the
    right verdict, accepted + duplicate + dead-lettered = records sent, and every dead
    letter (ledger and dead-letter topic) says why;
(c) + (d) ``leadflow verify``: the read models equal a rebuild, every hash chain holds;
plus: every stored event reached the events topic, in per-aggregate order.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from consumers.ingest.ledger import TABLE as LEDGER_TABLE
from domain.events import EngagementRecorded
from leadflow.bootstrap import open_store_db
from service.application import LeadflowApp
from service.importer import content_command_id
from tests.chaos.engagement_load import SEQ_HEADER, Sent
from tests.e2e.pipeline.pipeline import Pipeline
from tests.integration.consumers.stream_helpers import check_delivery, read_topic, stored_keys

SHOWN = 5  # examples shown per problem


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'PASS' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    sent: Sent


def engagement_records(pipeline: Pipeline, catalog: dict[int, Sent]) -> list[TopicRecord]:
    """Every record on the engagement topic, with the plan entry it was sent as."""
    records = read_topic(pipeline.bootstrap, pipeline.setup.stream.engagement_topic, timeout=60)
    found = []
    for record in records:
        seq = int(dict(record.headers)[SEQ_HEADER])
        found.append(TopicRecord(record.partition, record.offset, catalog[seq]))
    return found


def check_all_sent_arrived(records: list[TopicRecord], catalog: dict[int, Sent]) -> Check:
    on_topic = Counter(r.sent.seq for r in records)
    missing = [seq for seq in catalog if seq not in on_topic]
    twice = sum(1 for count in on_topic.values() if count > 1)
    return Check(
        "load reached the topic",
        not missing,
        f"{len(catalog)} records offered, {len(records)} on the topic "
        f"({twice} offered ones there more than once: resent after a failed send)"
        + (f"; MISSING (harness producer) seq {missing[:SHOWN]}" if missing else ""),
    )


def expected_engagements(records: list[TopicRecord]) -> dict[str, set[str]]:
    """Lead -> the event ids of its valid records on the topic."""
    by_lead: dict[str, set[str]] = defaultdict(set)
    for record in records:
        sent = record.sent
        if sent.valid and sent.lead and sent.event_id:
            by_lead[sent.lead].add(sent.event_id)
    return by_lead


def check_engagements(app: LeadflowApp, records: list[TopicRecord], leads: list[str]) -> Check:
    expected = expected_engagements(records)
    problems: list[str] = []
    recorded = 0
    for lead in sorted(set(leads) | expected.keys()):
        events = app.events_of(app.ids.lead(lead))
        ids = Counter(e.engagement_id for e in events if isinstance(e, EngagementRecorded))
        recorded += sum(ids.values())
        want = expected.get(lead, set())
        missing = sorted(want - ids.keys())
        doubled = sorted(i for i, n in ids.items() if n > 1)
        foreign = sorted(ids.keys() - want)
        if missing or doubled or foreign:
            problems.append(f"{lead}: missing {missing}, twice {doubled}, not its own {foreign}")
    total = sum(len(ids) for ids in expected.values())
    return Check(
        "(a) every valid engagement recorded exactly once on its lead",
        not problems,
        f"{total} distinct engagements expected over {len(expected)} leads, {recorded} recorded"
        + ("; " + "; ".join(problems[:SHOWN]) if problems else ""),
    )


def check_imports(app: LeadflowApp, lines: list[str]) -> Check:
    targets: set[tuple[str, str]] = set()
    ids: dict[int, str] = {}
    for number, line in enumerate(lines, start=1):
        data: dict[str, Any] = json.loads(line)
        ids[number] = content_command_id(data)
        targets.add(("deal", data["deal"]) if "deal" in data else ("lead", data["lead"]))
    recorded = app.ledger_entries(ids.values())
    missing: list[str] = []
    for number, command_id in ids.items():
        entry = recorded.get(command_id)
        if entry is None or entry.refusal is not None:
            missing.append(f"line {number} ({entry.command if entry else command_id})")
    return Check(
        "(a) every imported command applied",
        not missing,
        f"{len(lines)} commands over {len(targets)} leads and deals"
        + (f"; NOT APPLIED: {missing[:SHOWN]} ({len(missing)} in all)" if missing else ""),
    )


def ledger_rows(pipeline: Pipeline) -> dict[tuple[int, int], tuple[str, str | None]]:
    """(partition, offset) -> (status, reason) of every ledger row of this run's group."""
    stream = pipeline.setup.stream
    with open_store_db(pipeline.settings) as db:
        rows = db.execute(
            "SELECT kafka_partition, kafka_offset, status, reason FROM {t}"
            " WHERE consumer_group = ? AND topic = ?",
            (stream.ingest_group, stream.engagement_topic),
            t=LEDGER_TABLE,
        )
    return {(int(p), int(o)): (str(s), r) for p, o, s, r in rows}


def check_ledger(pipeline: Pipeline, records: list[TopicRecord]) -> Check:
    rows = ledger_rows(pipeline)
    on_topic = {(r.partition, r.offset): r for r in records}
    unjudged = sorted(on_topic.keys() - rows.keys())
    phantom = sorted(rows.keys() - on_topic.keys())
    wrong: list[str] = []
    accepted_per_engagement: Counter[tuple[str | None, str | None]] = Counter()
    for where, record in on_topic.items():
        if where not in rows:
            continue
        status = rows[where][0]
        sent = record.sent
        if sent.valid and status == "accepted":
            accepted_per_engagement[(sent.lead, sent.event_id)] += 1
        if (status == "dead_lettered") == sent.valid:
            wrong.append(f"{where} ({sent.kind} {sent.label or sent.event_id}) judged {status}")
    distinct = {(r.sent.lead, r.sent.event_id) for r in records if r.sent.valid}
    not_once = sorted(
        f"{e[1]} accepted {accepted_per_engagement[e]} times"
        for e in distinct
        if accepted_per_engagement[e] != 1
    )
    counts = Counter(status for status, _ in rows.values())
    expected = {
        "accepted": len(distinct),
        "duplicate": sum(1 for r in records if r.sent.valid) - len(distinct),
        "dead_lettered": sum(1 for r in records if not r.sent.valid),
    }
    total = counts["accepted"] + counts["duplicate"] + counts["dead_lettered"]
    problems = []
    if unjudged:
        problems.append(f"never judged: {unjudged[:SHOWN]} ({len(unjudged)})")
    if phantom:
        problems.append(f"judged but not on the topic: {phantom[:SHOWN]}")
    if wrong:
        problems.append(f"wrong verdicts: {wrong[:SHOWN]} ({len(wrong)})")
    if not_once:
        problems.append(f"not accepted exactly once: {not_once[:SHOWN]} ({len(not_once)})")
    if dict(counts) != {k: v for k, v in expected.items() if v}:
        problems.append(f"counts {dict(counts)} != expected {expected}")
    return Check(
        "(b) ingest: accepted + duplicate + dead-lettered = records sent",
        not problems and total == len(records),
        f"{counts['accepted']} accepted + {counts['duplicate']} duplicate + "
        f"{counts['dead_lettered']} dead-lettered = {total}; {len(records)} records sent"
        + ("; " + "; ".join(problems) if problems else ""),
    )


def check_dead_letters(pipeline: Pipeline) -> Check:
    rows = ledger_rows(pipeline)
    dead = {where for where, (status, _) in rows.items() if status == "dead_lettered"}
    no_reason = sorted(w for w in dead if not (rows[w][1] or "").strip())
    letters = read_topic(pipeline.bootstrap, pipeline.setup.stream.dlq_topic, timeout=60)
    sources: Counter[tuple[int, int]] = Counter()
    unexplained = 0
    for letter in letters:
        headers = {k: v.decode("utf-8", errors="replace") for k, v in letter.headers}
        if not headers.get("dlq.reason", "").strip():
            unexplained += 1
        sources[(int(headers["dlq.source.partition"]), int(headers["dlq.source.offset"]))] += 1
    missing = sorted(dead - sources.keys())
    extra = sorted(sources.keys() - dead)
    again = sum(n - 1 for n in sources.values())
    ok = not (no_reason or missing or extra or unexplained)
    return Check(
        "(b) every dead letter kept with its reason",
        ok,
        f"{len(dead)} dead-lettered in the ledger, {len(letters)} on the dead-letter topic "
        f"({again} published again after a crash)"
        + (f"; without reason in the ledger: {no_reason[:SHOWN]}" if no_reason else "")
        + (f"; not on the dead-letter topic: {missing[:SHOWN]}" if missing else "")
        + (f"; on the topic but not dead-lettered: {extra[:SHOWN]}" if extra else "")
        + (f"; {unexplained} dead letters without dlq.reason" if unexplained else ""),
    )


def check_relay_delivery(pipeline: Pipeline, app: LeadflowApp) -> Check:
    stored = stored_keys(app)
    records = read_topic(pipeline.bootstrap, pipeline.setup.stream.events_topic, timeout=60)
    try:
        result = check_delivery(stored, records)
    except AssertionError as error:
        return Check("relay: every stored event on the topic, in order", False, str(error))
    return Check(
        "relay: every stored event on the topic, in order",
        True,
        f"{len(stored)} events stored, {result['records']} records on the events topic "
        f"({result['duplicates']} sent again: at-least-once)",
    )


def check_verify(pipeline: Pipeline) -> Check:
    result = pipeline.run("verify")
    summary = result.lines[-1] if result.lines else " ".join(result.messages)
    problems = [line for line in result.lines[:-1]][:SHOWN]
    return Check(
        "(c)+(d) leadflow verify: read models = rebuild, every hash chain holds",
        result.code == 0,
        f"exit {result.code}: {summary}" + (f"; {problems}" if problems else ""),
    )
