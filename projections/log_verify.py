"""Is the event log what its signed heads say? (``leadflow verify``, issue 12)

Walks the stored events and the log chain (``adapters.audit_log``) in notification
order. Each event must have its chain entry and match it (else it was inserted, edited
or moved); each chain entry must have its event (else it was deleted). Independently of
the stored chain, the chain is recomputed from the events alone and compared with every
signed head and with every witnessed head: a re-chained store (an attacker who
edited events and recomputed every hash) cannot produce a head the audit key signed.
After each head the recomputation restarts from the signed link, so each problem is
pinned to the events between two heads (usually one transaction). A store that ends
before a signed or witnessed head whose signature verifies was truncated or rolled back
(one that does not verify is reported as forged); events after the last head were
written without the key. Heads verify with the audit key given or any key the rotation
records tie to it, each for its own positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import structlog
from eventsourcing.persistence import ApplicationRecorder, Notification

from adapters.audit_log import (
    CHAIN_TABLE,
    GENESIS,
    HEADS_TABLE,
    SignedHead,
    link_for,
    stored_bytes,
)
from adapters.audit_rotation import KeyRing
from adapters.mapper import stored_row_problem
from adapters.store_db import StoreDb

log = structlog.get_logger("leadflow.projections.log_verify")

_PAGE = 1000


@dataclass(frozen=True, slots=True)
class LogProblem:
    text: str
    aggregates: frozenset[UUID] = frozenset()
    """The aggregates of the events it names; empty when they are not known (a deleted
    event, an unreadable witness): then it may concern any aggregate."""

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class LogVerification:
    problems: list[LogProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events_checked: int = 0
    signed_up_to: int | None = None
    """The position of the latest head that matches the events (None: none does)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_for(self, aggregate_ids: Iterable[UUID]) -> list[LogProblem]:
        """The problems that concern any of ``aggregate_ids`` (or may: those whose
        aggregates are not known), e.g. to tell whether one lead's history is proven."""
        wanted = frozenset(aggregate_ids)
        return [p for p in self.problems if not p.aggregates or p.aggregates & wanted]


def _describe(event: Notification) -> str:
    return f"aggregate {event.originator_id} version {event.originator_version}"


def _events(recorder: ApplicationRecorder) -> Iterator[Notification]:
    start = 1
    while page := recorder.select_notifications(start=start, limit=_PAGE):
        yield from page
        start = page[-1].id + 1


def _chain_entries(db: StoreDb) -> Iterator[tuple[int, bytes]]:
    after = 0
    while rows := db.execute(
        "SELECT position, link FROM {t} WHERE position > ? ORDER BY position LIMIT ?",
        (after, _PAGE),
        t=CHAIN_TABLE,
    ):
        for position, link in rows:
            yield int(position), stored_bytes(link)
        after = int(rows[-1][0])


def _merged(
    events: Iterator[Notification], chain: Iterator[tuple[int, bytes]]
) -> Iterator[tuple[int, Notification | None, bytes | None]]:
    """(position, event or None, chain link or None) in position order."""
    event, entry = next(events, None), next(chain, None)
    while event is not None or entry is not None:
        if entry is None or (event is not None and event.id < entry[0]):
            assert event is not None
            yield event.id, event, None
            event = next(events, None)
        elif event is None or entry[0] < event.id:
            yield entry[0], None, entry[1]
            entry = next(chain, None)
        else:
            yield event.id, event, entry[1]
            event, entry = next(events, None), next(chain, None)


def _span(first: int, last: int) -> str:
    return f"notification {last}" if first >= last else f"notifications {first} to {last}"


def _link(previous: bytes, event: Notification) -> bytes:
    """The event's link; a damaged row (NULL topic or state, a column of another type)
    links as empty, so it mismatches instead of crashing."""
    if stored_row_problem(event) is not None:
        return link_for(previous, event.id, "", "", 0, b"")
    return link_for(
        previous, event.id, event.topic, event.originator_id, event.originator_version, event.state
    )


def _aggregates(events: Iterable[Notification]) -> frozenset[UUID]:
    """The events' aggregates (a damaged row's id that is not a UUID is not one)."""
    return frozenset(e.originator_id for e in events if isinstance(e.originator_id, UUID))


@dataclass(slots=True)
class _Walk:
    keys: KeyRing | None
    heads: dict[int, list[tuple[str, SignedHead]]]
    result: LogVerification = field(default_factory=LogVerification)
    recomputed: bytes = GENESIS
    since_head: list[Notification] = field(default_factory=list)
    last_head: int = 0
    mismatch_at: int | None = None
    every_signature: bool = True
    anchor: tuple[str, SignedHead] | None = None

    def problem(self, text: str, *events: Notification) -> None:
        self.result.problems.append(LogProblem(text, _aggregates(events)))

    def check_heads(self, up_to: int) -> None:
        """Check the heads at positions up to ``up_to`` (also those whose event is gone)."""
        for position in sorted(p for p in self.heads if p <= up_to):
            for name, head in self.heads.pop(position):
                self.check_head(name, head)

    def check_head(self, name: str, head: SignedHead) -> None:
        if self.keys is None:
            return
        matches = self.recomputed == head.link
        if matches and not self.every_signature:
            self.anchor = (name, head)  # its signature is checked once the walk is done
        elif self.forged(name, head):
            return
        since = _span(self.last_head + 1, head.position)
        if not matches:
            aggregates = sorted({str(e.originator_id) for e in self.since_head})
            self.problem(
                f"the events of {since} do not match the {name} at notification "
                f"{head.position} (signed at {head.signed_at}): an event was edited, "
                "inserted, deleted or reordered, or its aggregate re-chained"
                + (f" (aggregates there now: {', '.join(aggregates)})" if aggregates else ""),
                *self.since_head,
            )
            self.mismatch_at = head.position
        elif self.mismatch_at != head.position:
            self.result.signed_up_to = head.position
        self.recomputed = head.link
        self.since_head = []
        self.last_head = head.position

    def forged(self, name: str, head: SignedHead) -> bool:
        """Report a head its key did not sign (True: ignore it) or signed where the key
        rotations do not let it sign."""
        assert self.keys is not None
        span = self.keys.get(head.key_id)
        if span is None or not span.key.verifies(head.message(), head.signature):
            self.problem(
                f"the {name} at notification {head.position} (signed at {head.signed_at}) does "
                f"not verify with the audit keys ({', '.join(self.keys)}): forged, or signed "
                "by another key"
            )
            return True
        if not span.covers(head.position):
            self.problem(
                f"the {name} at notification {head.position} is signed by audit key "
                f"{head.key_id}, which the key rotations let sign only notifications "
                f"{span.describe_ranges()}"
            )
        return False

    def settle_anchor(self) -> None:
        """Without every signature checked: the latest head that matches the events
        proves all before it only when its own signature holds."""
        if self.anchor is not None and self.forged(*self.anchor):
            self.result.signed_up_to = None


def verify_log(
    recorder: ApplicationRecorder,
    db: StoreDb,
    keys: KeyRing | None,
    witnessed: Sequence[tuple[str, SignedHead]],
    *,
    witness_configured: bool,
    every_signature: bool = True,
) -> LogVerification:
    """Check the stored events against the log chain, the signed heads and the
    ``witnessed`` heads, each named (``("witnessed head (line 3)", head)``; see the module's
    description). Without ``every_signature``, the signatures checked are those of the
    heads that do not match and of the latest that does (which proves every event before
    it): what one lead's history needs, at a fraction of the cost."""
    heads: dict[int, list[tuple[str, SignedHead]]] = {}
    for row in db.execute(
        "SELECT position, link, key_id, signature, signed_at FROM {t} ORDER BY position",
        t=HEADS_TABLE,
    ):
        head = SignedHead.from_row(row)
        heads.setdefault(head.position, []).append(("signed head", head))
    for name, head in witnessed:
        at = heads.setdefault(head.position, [])
        if all(head != known for _, known in at):  # the store's own copy is checked once
            at.append((name, head))
    last_signed = max(heads, default=0)
    walk = _Walk(keys, heads, every_signature=every_signature)
    stored_previous = GENESIS
    last_event: Notification | None = None
    for position, event, stored in _merged(_events(recorder), _chain_entries(db)):
        walk.check_heads(position - 1)
        if event is None:
            walk.problem(
                f"notification {position} is in the log chain but its event is not in the "
                "store: deleted"
            )
        else:
            walk.result.events_checked += 1
            walk.recomputed = _link(walk.recomputed, event)
            walk.since_head.append(event)
            last_event = event
            if stored is None:
                walk.problem(
                    f"notification {position} ({_describe(event)}) has no log chain entry: "
                    "inserted outside leadflow",
                    event,
                )
            elif _link(stored_previous, event) != stored:
                walk.problem(
                    f"notification {position} ({_describe(event)}) does not match its log "
                    "chain entry: edited, or moved from another position",
                    event,
                )
        if stored is not None:
            stored_previous = stored
        walk.check_heads(position)
    end = 0 if last_event is None else last_event.id
    walk.settle_anchor()
    for position in sorted(walk.heads):
        for name, head in walk.heads[position]:
            if keys is not None and walk.forged(name, head):
                continue  # no key signed it: it tells nothing of the store's end
            walk.problem(
                f"the {name} at notification {position} (signed at {head.signed_at}) names "
                f"an event that is not in the store (the store ends at notification {end}): "
                "events deleted, or the store rolled back to an earlier copy"
            )
    _anchoring(walk, keys, last_signed, end, witnessed, witness_configured=witness_configured)
    log.debug(
        "log_verified",
        events_checked=walk.result.events_checked,
        problems=len(walk.result.problems),
        signed_up_to=walk.result.signed_up_to,
    )
    return walk.result


def _anchoring(
    walk: _Walk,
    keys: KeyRing | None,
    last_signed: int,
    end: int,
    witnessed: Sequence[tuple[str, SignedHead]],
    *,
    witness_configured: bool,
) -> None:
    result = walk.result
    if keys is None:
        result.notes.append(
            "WARNING: the event log is NOT ANCHORED: LEADFLOW_AUDIT_KEY_FILE is not set, so "
            "nothing proves that the store was not rewritten (see leadflow audit keygen)"
        )
        return
    unsigned = [e for e in walk.since_head if e.id > last_signed]
    if unsigned:
        walk.problem(
            f"the events of {_span(unsigned[0].id, end)} ({len(unsigned)}) are not covered "
            "by any signed head: written without the audit key",
            *unsigned,
        )
    if not witness_configured:
        result.notes.append(
            "WARNING: no witness (LEADFLOW_AUDIT_WITNESS is not set): a rollback of the "
            "store to an earlier copy of itself cannot be detected"
        )
    elif not witnessed and end:
        result.notes.append("WARNING: the witness holds no signed head yet")
