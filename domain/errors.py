"""Errors a command can meet; each names what was addressed, where it stood and why."""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """A command that the domain refuses. Nothing was stored."""


class IllegalTransition(DomainError):
    def __init__(
        self,
        kind: str,
        external_id: str,
        aggregate_id: UUID,
        stage: str,
        attempted: str,
        why: str,
    ) -> None:
        self.kind = kind
        self.external_id = external_id
        self.aggregate_id = aggregate_id
        self.stage = stage
        self.attempted = attempted
        self.why = why
        super().__init__(
            f"{kind} {external_id!r} ({aggregate_id}) is in stage {stage!r}: "
            f"cannot {attempted}: {why}"
        )


class UnknownAggregate(DomainError):
    def __init__(self, kind: str, ref: str) -> None:
        self.kind = kind
        self.ref = ref
        super().__init__(f"{kind} {ref!r} does not exist")


class AlreadyExists(DomainError):
    def __init__(self, kind: str, ref: str, detail: str) -> None:
        self.kind = kind
        self.ref = ref
        super().__init__(f"{kind} {ref!r} already exists: {detail}")


class DamagedHistory(ValueError):
    """A stored history no aggregate can be built from (its creation event is missing):
    the store is damaged, not the command."""

    def __init__(self, aggregate_id: object, version: object, event_type: str) -> None:
        super().__init__(
            f"the stored events of aggregate {aggregate_id} start at version {version} "
            f"({event_type}), not with its creation event: earlier events are missing"
        )


class ErasedLead(DomainError):
    """A command naming a lead that was erased (``leadflow forget``), or one that would
    record personal data under its destroyed key."""

    def __init__(self, lead_id: object, attempted: str = "take this command") -> None:
        self.lead_id = lead_id
        super().__init__(
            f"lead {lead_id} is erased (its personal data was forgotten): cannot {attempted}"
        )
