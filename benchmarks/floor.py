"""The bare eventsourcing floor: a minimal aggregate saved with no leadflow code involved.

``FloorApp`` is a plain eventsourcing ``Application``. Given leadflow's recorder it writes
through that very recorder (same connection pool, same tables), so the only difference
from leadflow's command path is leadflow itself: commands, pydantic events, the hash
chain, scoring. ``Note`` carries a text padded to the byte size of a leadflow event.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import ApplicationRecorder


class Note(Aggregate):
    """The smallest aggregate that records an event carrying a payload."""

    def __init__(self, text: str) -> None:
        self.text = text

    @event("Noted")
    def note(self, text: str) -> None:
        self.text = text


class FloorApp(Application[UUID]):
    name = "BenchFloor"

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        recorder: ApplicationRecorder | None = None,
        snapshot_interval: int = 0,
    ) -> None:
        self._shared_recorder = recorder
        env = dict(env)
        env.pop("AGGREGATE_CACHE_MAXSIZE", None)
        # Its own tables take eventsourcing's own recorder: leadflow's would chain them
        # into the log of the store's schema, whose positions they do not share.
        env.pop("APPLICATION_RECORDER_TOPIC", None)
        if snapshot_interval > 0:
            env["IS_SNAPSHOTTING_ENABLED"] = "y"
            self.snapshotting_intervals = {Note: snapshot_interval}  # type: ignore[misc]
        super().__init__(env)

    def construct_recorder(self) -> ApplicationRecorder:
        if self._shared_recorder is not None:
            return self._shared_recorder
        return super().construct_recorder()

    def stored_size_of_noted(self, text: str) -> int:
        """Bytes stored for one ``Noted`` event carrying ``text``."""
        note = Note("")
        note.collect_events()
        note.note(text)
        (noted,) = note.collect_events()
        return len(self.mapper.to_stored_event(noted).state)

    def padding_for(self, event_bytes: int) -> str:
        """A text that makes a ``Noted`` event as large as ``event_bytes`` when stored."""
        return "x" * max(0, event_bytes - self.stored_size_of_noted(""))
