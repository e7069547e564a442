"""Snapshots are a cache, never a source: each is proven against its events before use.

Anyone who can write the database can edit a snapshot and recompute any digest stored
beside it, so a snapshot is proven by replaying its aggregate's events up to its version
and comparing: the replay must reach exactly that version, end at the event hash the
snapshot records as its chain position, and give the same state. A snapshot that fails
is refused (``ForgedSnapshot``, a damaged store: exit 3 from the CLI) and never feeds a
read or a new event. ``ProvenSnapshots`` is the application's snapshot store doing this
on every load, except for a snapshot a seal key sealed (``service.snapshot_seal``: the
audit key, or the local seal key from the privacy master key): its seal and chain
position are checked instead; and a snapshot this process wrote or
already proved, read back with the same content (its digest remembered), is not
replayed again. ``snapshot_problems`` replays every
stored snapshot of an aggregate for ``leadflow verify``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, cast
from uuid import UUID

import structlog
from eventsourcing.persistence import AggregateRecorder, EventStore, Mapper

from adapters.event_envelope import DECODE_ERRORS
from adapters.logging import error_text
from adapters.mapper import StoredEventError
from domain.aggregate import Aggregate, Snapshot, project_aggregate, snapshot_class
from service.snapshot_seal import LocalSealKey, SealKey, seal_key, seal_verdict, sealed

log = structlog.get_logger("leadflow.service.snapshot_proof")

PROVEN_MEMO_SIZE = 10_000


class ForgedSnapshot(StoredEventError):
    """A stored snapshot that does not match its aggregate's events."""

    def __init__(self, snapshot: Snapshot, problem: str) -> None:
        self.originator_id = snapshot.originator_id
        self.originator_version = snapshot.originator_version
        ValueError.__init__(
            self,
            f"stored snapshot {snapshot.originator_version} of aggregate "
            f"{snapshot.originator_id} {problem} (the snapshot was altered or its events "
            "were; it is not used)",
        )


def snapshot_mismatch(snapshot: Snapshot, replayed: Aggregate | None) -> str | None:
    """Why ``snapshot`` is not the state its events give (``replayed``: those events up
    to its version folded), or None when it is. Names fields, never their values."""
    version = snapshot.originator_version
    if replayed is None or replayed.version != version:
        found = 0 if replayed is None else replayed.version
        return f"claims version {version} but its aggregate's events end at version {found}"
    if snapshot.chain_hash is not None and snapshot.chain_hash != replayed.last_hash:
        return (
            f"claims chain position {snapshot.chain_hash[:12]}… but event {version} has "
            f"hash {replayed.last_hash[:12]}…"
        )
    try:
        claimed = snapshot_class(snapshot).model_validate(snapshot.state).model_dump(mode="json")
    except ValueError as error:
        return f"holds a state that is not its aggregate's: {error_text(error)}"
    actual = replayed.model_dump(mode="json")
    differing = sorted(k for k in claimed.keys() | actual.keys() if claimed.get(k) != actual.get(k))
    if differing:
        return f"differs from its events in {', '.join(differing)}"
    return None


def prove_snapshot(snapshot: Snapshot, events: EventStore[UUID]) -> None:
    """ForgedSnapshot unless ``snapshot`` is what its aggregate's stored events give."""
    replayed = project_aggregate(
        None, events.get(snapshot.originator_id, lte=snapshot.originator_version)
    )
    problem = snapshot_mismatch(snapshot, replayed)
    if problem is not None:
        raise ForgedSnapshot(snapshot, problem)


class ProvenSnapshots(EventStore[UUID]):
    """The snapshot store: every snapshot read is proven first; each one written is
    sealed when the process holds the audit key."""

    def __init__(
        self, mapper: Mapper[UUID], recorder: AggregateRecorder, events: EventStore[UUID]
    ) -> None:
        super().__init__(mapper, recorder)
        self.events = events
        self._proven: OrderedDict[tuple[UUID, int], bytes] = OrderedDict()
        self._proven_lock = threading.Lock()
        self.local_seal: LocalSealKey | None = None

    def seal_key(self) -> SealKey | None:
        return seal_key(self.events.recorder, self.local_seal)

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[Any]:
        for snapshot in super().get(originator_id, gt=gt, lte=lte, desc=desc, limit=limit):
            if self._usable(cast(Snapshot, snapshot)):
                yield snapshot

    def _usable(self, snapshot: Snapshot) -> bool:
        """Proven (ForgedSnapshot otherwise); a snapshot without a chain position, taken
        by an older leadflow whose state may be derived differently, that does not match
        is not used (a replay is) and is left for ``verify`` to report."""
        digest = _digest(snapshot)
        if self._already_proven(snapshot, digest):
            return True
        if snapshot.chain_hash is not None:
            self._prove(snapshot)
            self._remember(snapshot, digest)
            return True
        try:
            prove_snapshot(snapshot, self.events)
            self._remember(snapshot, digest)
        except ForgedSnapshot as error:
            log.warning(
                "snapshot_not_used",
                aggregate_id=str(snapshot.originator_id),
                version=snapshot.originator_version,
                problem=str(error),
            )
            return False
        return True

    def usable_as_read(self, snapshot: Snapshot, event_at_version: Any) -> bool:
        """Whether ``snapshot`` is usable as ``get`` would find it, known without reading
        the store again: already proven with this content, or sealed by this process's
        seal key at the chain position of ``event_at_version`` (its stored event at the
        snapshot's version, read with the events after it). False: let ``get`` decide
        (a replay, a forgery to report)."""
        digest = _digest(snapshot)
        if self._already_proven(snapshot, digest):
            return True
        if snapshot.chain_hash is None or seal_verdict(snapshot, self.seal_key()) is not True:
            return False
        at_position = getattr(event_at_version, "hash", None) == snapshot.chain_hash
        if at_position:
            self._remember(snapshot, digest)
        return at_position

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Any]:
        key = self.seal_key()
        snapshots = [sealed(s, key) for s in domain_events]
        recorded = super().put(snapshots, **kwargs)
        for snapshot in snapshots:
            self._remember(snapshot, _digest(snapshot))
        return recorded

    def _already_proven(self, snapshot: Snapshot, digest: bytes) -> bool:
        where = (snapshot.originator_id, snapshot.originator_version)
        with self._proven_lock:
            if self._proven.get(where) != digest:
                return False
            self._proven.move_to_end(where)
            return True

    def _remember(self, snapshot: Snapshot, digest: bytes) -> None:
        with self._proven_lock:
            self._proven[(snapshot.originator_id, snapshot.originator_version)] = digest
            while len(self._proven) > PROVEN_MEMO_SIZE:
                self._proven.popitem(last=False)

    def _prove(self, snapshot: Snapshot) -> None:
        verdict = seal_verdict(snapshot, self.seal_key())
        if verdict and self._at_stored_position(snapshot):
            return
        prove_snapshot(snapshot, self.events)  # a replay names what differs, if anything
        if verdict is False:
            raise ForgedSnapshot(snapshot, "has a seal its key did not make")
        if verdict:
            version = snapshot.originator_version
            raise ForgedSnapshot(
                snapshot, f"is sealed at a chain position that is not event {version}'s"
            )

    def _at_stored_position(self, snapshot: Snapshot) -> bool:
        version = snapshot.originator_version
        found = list(self.events.get(snapshot.originator_id, gt=version - 1, lte=version))
        return bool(found) and getattr(found[0], "hash", None) == snapshot.chain_hash


def _digest(snapshot: Snapshot) -> bytes:
    return hashlib.sha256(snapshot.model_dump_json().encode()).digest()


def snapshot_problems(
    snapshots: ProvenSnapshots, events: EventStore[UUID], aggregate_id: UUID
) -> list[str]:
    """Every stored snapshot of the aggregate that is unreadable or not what its events
    give, each as one line; the events are replayed once. An event that cannot be read
    ends the check (the hash chain check names it)."""
    problems: list[str] = []
    key = snapshots.seal_key()
    mapper = snapshots.mapper
    pending: list[Snapshot] = []
    for stored in snapshots.recorder.select_events(aggregate_id):
        try:
            pending.append(cast(Snapshot, mapper.to_domain_event(stored)))
        except StoredEventError as error:
            problems.append(str(error))
    if not pending:
        return problems
    replayed: Aggregate | None = None
    try:
        for event in events.get(aggregate_id, lte=pending[-1].originator_version):
            replayed = project_aggregate(replayed, [event])
            while pending and replayed and pending[0].originator_version == replayed.version:
                _compare(pending.pop(0), replayed, problems, key)
    except DECODE_ERRORS:  # includes StoredEventError
        return problems
    for snapshot in pending:  # beyond the aggregate's last event
        _compare(snapshot, replayed, problems, key)
    return problems


def _compare(
    snapshot: Snapshot, replayed: Aggregate | None, problems: list[str], key: SealKey | None
) -> None:
    problem = snapshot_mismatch(snapshot, replayed)
    if problem is None and seal_verdict(snapshot, key) is False:
        problem = "has a seal its key did not make"
    if problem is not None and snapshot.chain_hash is None:
        problem += " and records no chain position (taken by an older leadflow, or altered)"
    if problem is not None:
        problems.append(str(ForgedSnapshot(snapshot, problem)))
