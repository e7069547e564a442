"""Which role may do what: the issue's role table, one permission per kind of operation."""

from __future__ import annotations

from enum import StrEnum

from adapters.api_keys import Role


class Permission(StrEnum):
    INTAKE = "intake"  # engagement intake
    COMMAND = "command"  # lifecycle and deal commands
    READ_AGGREGATE = "read-aggregate"  # a lead, a deal
    BOARD = "board"  # the pipeline board
    REPORTS = "reports"  # funnel, KPIs, stalled
    HISTORY = "history"  # a lead's audited history
    VERIFY = "verify"
    EVENTS = "events"  # the live stream of changes
    KEYS = "keys"  # API key management
    ERASE = "erase"  # forgetting a lead's personal data


GRANTS: dict[Role, frozenset[Permission]] = {
    "marketing": frozenset({Permission.INTAKE}),
    "sales": frozenset({Permission.COMMAND, Permission.READ_AGGREGATE, Permission.BOARD}),
    "manager": frozenset(
        {
            Permission.READ_AGGREGATE,
            Permission.BOARD,
            Permission.REPORTS,
            Permission.HISTORY,
            Permission.VERIFY,
            Permission.EVENTS,
        }
    ),
    "auditor": frozenset({Permission.HISTORY, Permission.VERIFY}),
    "admin": frozenset(Permission),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
