"""The unit of work: a batch of commands decided together and saved in one transaction.

Each command of a batch sees the effects of the ones before it. The batch decides on
cached aggregates without asking the store for newer events; a stale one shows up as a
conflict on save or, where nothing was to be stored, by a version check of the cached
aggregates. Either way the batch is evicted from the cache and recomputed on fresh state
(optimistic concurrency); after repeated conflicts it is split into single commands.

Every command with an id (``command_id``) is recorded once in the command ledger
(``adapters.command_ledger``), in the transaction of its events, with the fingerprint of
its content (``service.command_fingerprint``) and its outcome. The batch reads the ledger
entries of its ids in one query: an id seen with the same content gets its recorded
outcome without being decided again (applied: a duplicate; refused: the same refusal);
an id seen with other content is refused and nothing is recorded. A command without an
id is not recorded: its generated causation id can never come again.

An engagement is recorded once per lead and ``event_id``, whatever its command id: the
ledger also holds ``engagement:<lead id>:<event_id>`` for each engagement applied, and
an engagement found there is a duplicate (not a refusal, even with other content).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

import structlog
from eventsourcing.persistence import AggregateRecorder, IntegrityError
from pydantic import BaseModel, ConfigDict

from adapters.aggregate_versions import latest_versions
from adapters.command_ledger import ERASED_FINGERPRINT, LEDGER_KWARG, LedgerEntry
from adapters.stale_check import EXPECTED_VERSIONS_KWARG
from domain import commands as c
from domain.aggregate import Aggregate
from domain.errors import DomainError
from domain.lead import Lead
from service.command_fingerprint import fingerprint, summary
from service.handlers import HANDLERS, Setup
from service.ids import IdScheme, as_uuid, resolve_ref
from service.queries import of_kind

log = structlog.get_logger("leadflow.application")

MAX_ATTEMPTS = 20
A = TypeVar("A", bound=Aggregate)


class Outcome(BaseModel):
    """``replayed``: the command ledger already held this command (its id and content);
    ``events`` is then what it stored when it was applied."""

    model_config = ConfigDict(frozen=True)

    status: Literal["applied", "duplicate"]
    aggregate_ids: tuple[UUID, ...] = ()
    events: int = 0
    replayed: bool = False


class RefusedBefore(DomainError):
    """A command the ledger recorded as refused, sent again: refused with its reason."""


class CommandIdReused(DomainError):
    """A command id the ledger holds for a command with other content."""

    def __init__(self, command_id: str, earlier: str) -> None:
        super().__init__(
            f"command id {command_id!r} was already used for a different command "
            f"({earlier}); send a new id"
        )


class ConcurrencyConflict(DomainError):
    pass


class CommandStore(Setup, Protocol):
    """What the unit of work needs of the application: its store and aggregate cache."""

    @property
    def recorder(self) -> AggregateRecorder: ...

    def exists(self, aggregate_id: UUID) -> bool: ...

    def is_cached(self, aggregate_id: UUID) -> bool: ...

    def load_cached(self, kind: type[A], aggregate_id: UUID, ref: str) -> A: ...

    def evict(self, aggregate_ids: Iterable[UUID]) -> None: ...

    def save(self, *objs: Aggregate, **kwargs: Any) -> object: ...

    def ledger_entries(self, command_ids: Iterable[str]) -> dict[str, LedgerEntry]: ...


def handle_many(
    app: CommandStore, commands: Sequence[c.Command], *, stop_at_refusal: bool = False
) -> list[Outcome | DomainError]:
    """Apply commands in order and store all their events in ONE transaction.

    A refused command yields its DomainError in the result list and changes nothing; the
    others still apply (with ``stop_at_refusal`` the batch ends at the first refusal: the
    results stop there and only the commands before it are stored). After a conflict the
    batch is recomputed after a short random pause; after repeated conflicts each command
    is stored in its own transaction. The batch asks the id scheme once for the ids of
    its leads (allocating those it captures), the store once which of the aggregates it
    may create or address by UUID exist, and the ledger once for the entries of its
    command ids.
    """
    captured = [command.lead for command in commands if isinstance(command, c.CaptureLead)]
    with app.ids.batch(_lead_refs(commands), captured):
        return _handle_many(app, commands, stop_at_refusal)


def _lead_refs(commands: Sequence[c.Command]) -> list[str]:
    return [ref for command in commands if (ref := getattr(command, "lead", None))]


def _handle_many(
    app: CommandStore, commands: Sequence[c.Command], stop_at_refusal: bool
) -> list[Outcome | DomainError]:
    may_exist = _ids_to_probe(app.ids, commands)
    if app.personal_data is not None and len(commands) > 1:
        app.personal_data.prepare(_new_key_owners(app.ids, commands))
    for number in range(1, MAX_ATTEMPTS + 1):
        batch = _Batch(app, may_exist, _command_ids(app.ids, commands))
        results: list[Outcome | DomainError] = []
        try:
            for command in commands:
                results.append(_apply(app, command, batch))
                if stop_at_refusal and isinstance(results[-1], DomainError):
                    break
            batch.commit()
        except (IntegrityError, _StaleBatch):
            batch.evict()
            log.debug("concurrency_conflict_retry", attempt=number, commands=len(commands))
            if number > 1 or not batch.used_cache:  # a stale cache needs no pause
                time.sleep(random.uniform(0, min(0.02 * 2**number, 0.5)))
            if len(commands) > 1 and number >= 2:
                return _one_by_one(app, commands, stop_at_refusal)
            continue
        return results
    msg = f"gave up after {MAX_ATTEMPTS} concurrent-update conflicts"
    raise ConcurrencyConflict(msg)


def _ids_to_probe(scheme: IdScheme, commands: Sequence[c.Command]) -> set[UUID]:
    """Aggregates whose existence the batch will ask about: asked in one query."""
    ids: set[UUID] = set()
    for command in commands:
        if isinstance(command, c.CaptureLead):
            ids.add(scheme.lead(command.lead))
            continue
        if isinstance(command, c.OpenDeal):
            ids.add(scheme.deal(command.deal))
        for ref in (getattr(command, "lead", None), getattr(command, "deal", None)):
            if ref and (own_id := as_uuid(ref)) is not None:
                ids.add(own_id)
    return ids


def _new_key_owners(scheme: IdScheme, commands: Sequence[c.Command]) -> set[UUID]:
    """Whose data keys the batch may create: leads captured, deals opened without one."""
    owners: set[UUID] = set()
    for command in commands:
        if isinstance(command, c.CaptureLead) and as_uuid(command.lead) is None:
            owners.add(scheme.lead(command.lead))
        elif isinstance(command, c.OpenDeal) and command.lead is None:
            owners.add(scheme.deal(command.deal))
    return owners


def _command_ids(scheme: IdScheme, commands: Sequence[c.Command]) -> set[str]:
    """The ledger ids the batch may meet: command ids and engagement keys."""
    ids = {command.command_id for command in commands if command.command_id is not None}
    for command in commands:
        if isinstance(command, c.RecordEngagement):
            own_id = as_uuid(command.lead)
            for lead_id in (scheme.lead(command.lead), *([own_id] if own_id else [])):
                ids.add(_engagement_key(lead_id, command.event_id))
    return ids


def _engagement_key(lead_id: UUID, event_id: str) -> str:
    return f"engagement:{lead_id}:{event_id}"


def _one_by_one(
    app: CommandStore, commands: Sequence[c.Command], stop_at_refusal: bool
) -> list[Outcome | DomainError]:
    results: list[Outcome | DomainError] = []
    for command in commands:
        results += handle_many(app, [command])
        if stop_at_refusal and isinstance(results[-1], DomainError):
            break
    return results


def _apply(app: CommandStore, command: c.Command, batch: _Batch) -> Outcome | DomainError:
    command_id = command.command_id
    if command_id is None and not isinstance(command, c.RecordEngagement):
        return _decide(app, command, batch)  # nothing to look up or record
    content = fingerprint(command)
    seen = batch.ledger.get(command_id) if command_id is not None else None
    if seen is not None:
        return _recorded_outcome(seen, content)
    result = _decide_once_per_engagement(app, command, batch, content)
    if command_id is not None:
        batch.record(_ledger_entry(command_id, content, command, result))
    return result


def _decide_once_per_engagement(
    app: CommandStore, command: c.Command, batch: _Batch, content: bytes
) -> Outcome | DomainError:
    if not isinstance(command, c.RecordEngagement):
        return _decide(app, command, batch)
    lead_id = resolve_ref(command.lead, app.ids.lead, batch.exists)
    key = _engagement_key(lead_id, command.event_id)
    seen = batch.ledger.get(key)
    if seen is not None:
        return Outcome(status="duplicate", aggregate_ids=seen.aggregate_ids)
    result = _decide(app, command, batch)
    if isinstance(result, Outcome) and result.events:
        batch.record(_ledger_entry(key, content, command, result))
    return result


def _ledger_entry(
    ledger_id: str, content: bytes, command: c.Command, result: Outcome | DomainError
) -> LedgerEntry:
    entry = LedgerEntry(ledger_id, content, summary(command))
    if isinstance(result, DomainError):
        return replace(entry, refusal=str(result))
    return replace(entry, aggregate_ids=result.aggregate_ids, events=result.events)


def _recorded_outcome(seen: LedgerEntry, content: bytes) -> Outcome | DomainError:
    """The outcome recorded for the id (a row of an erased lead's command can no longer
    tell its content apart from another: it answers with its outcome)."""
    if seen.fingerprint not in (content, ERASED_FINGERPRINT):
        return CommandIdReused(seen.command_id, seen.command)
    if seen.refusal is not None:
        return RefusedBefore(seen.refusal)
    return Outcome(
        status="duplicate", aggregate_ids=seen.aggregate_ids, events=seen.events, replayed=True
    )


def _decide(app: CommandStore, command: c.Command, batch: _Batch) -> Outcome | DomainError:
    batch.start_command()
    try:
        ids = HANDLERS[type(command)](app, command, batch)
    except DomainError as refused:
        if batch.events_added():  # pragma: no cover - guards the refuse-first invariant
            msg = f"{type(command).__name__} changed state before refusing: {refused}"
            raise RuntimeError(msg) from refused
        return refused
    added = batch.events_added()
    return Outcome(status="applied" if added else "duplicate", aggregate_ids=ids, events=added)


class _StaleBatch(Exception):
    """A decision that stored nothing was taken on a cached aggregate that has moved on, or
    an external id led to an erased lead that the id scheme no longer maps it to."""


class _Batch:
    """The aggregates a batch of commands works on, saved together in one transaction."""

    def __init__(self, app: CommandStore, may_exist: set[UUID], command_ids: set[str]) -> None:
        self.app = app
        self.ledger = app.ledger_entries(command_ids) if command_ids else {}
        self._new_entries: list[LedgerEntry] = []
        self.aggregates: dict[UUID, Aggregate] = {}
        self._cache_hits: dict[UUID, int] = {}  # version of each aggregate the cache gave
        self._probed = may_exist
        cached = {i for i in may_exist if app.is_cached(i)}
        unknown = may_exist - cached
        stored = latest_versions(app.recorder, unknown) if unknown else {}
        self._existing = cached | stored.keys()
        self._touched: dict[UUID, int] = {}  # pending events per aggregate when first touched

    def start_command(self) -> None:
        self._touched = {}

    def events_added(self) -> int:
        """Events the current command added to the aggregates it touched."""
        return sum(len(self.aggregates[i].pending_events) - n for i, n in self._touched.items())

    def exists(self, aggregate_id: UUID) -> bool:
        if aggregate_id in self.aggregates:
            return True
        if aggregate_id in self._probed:
            return aggregate_id in self._existing
        return self.app.exists(aggregate_id)

    def load(self, kind: type[A], aggregate_id: UUID, ref: str) -> A:
        aggregate = self.aggregates.get(aggregate_id)
        if aggregate is None:
            cached = self.app.is_cached(aggregate_id)
            aggregate = self.aggregates[aggregate_id] = self.app.load_cached(
                kind, aggregate_id, ref
            )
            if cached:
                self._cache_hits[aggregate_id] = aggregate.version
        loaded = of_kind(kind, aggregate, ref)
        if isinstance(loaded, Lead) and loaded.erased_at and self.app.ids.is_stale(ref, loaded.id):
            log.debug("stale_lead_ref", lead_id=str(loaded.id))
            raise _StaleBatch  # the ref was remembered for a lead forgotten since
        self._touched.setdefault(aggregate_id, len(loaded.pending_events))
        return loaded

    def add(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate
        self._touched.setdefault(aggregate.id, 0)

    def record(self, entry: LedgerEntry) -> None:
        """A command's ledger entry, stored with the batch's events."""
        self.ledger[entry.command_id] = entry
        self._new_entries.append(entry)

    def commit(self) -> None:
        """Save events and ledger entries in one transaction; the store's unique
        (id, version) refuses stale writes, the ledger's unique id a racing twin, and
        the recorder the write when a cached aggregate the batch only read has moved on
        (``adapters.stale_check``, in the same transaction)."""
        dirty = [a for a in self.aggregates.values() if a.pending_events]
        unchanged = self._unchanged_cache_hits()
        if dirty or self._new_entries:
            self.app.save(
                *dirty,
                **{LEDGER_KWARG: tuple(self._new_entries), EXPECTED_VERSIONS_KWARG: unchanged},
            )
        elif unchanged:  # nothing is stored: an answer on stale state must not be given
            self._check_unchanged_are_current(unchanged)

    @property
    def used_cache(self) -> bool:
        return bool(self._cache_hits)

    def evict(self) -> None:
        self.app.evict(self.aggregates)

    def _unchanged_cache_hits(self) -> dict[UUID, int]:
        """Cached aggregates the batch only read, with their cached versions: refusals and
        duplicates store nothing, so no conflict on insert would reveal stale state."""
        return {i: v for i, v in self._cache_hits.items() if not self.aggregates[i].pending_events}

    def _check_unchanged_are_current(self, unchanged: dict[UUID, int]) -> None:
        latest = latest_versions(self.app.recorder, unchanged)
        moved = [str(i) for i, v in unchanged.items() if latest.get(i, 0) > v]
        if moved:
            log.debug("stale_cached_aggregates", aggregate_ids=moved)
            raise _StaleBatch
