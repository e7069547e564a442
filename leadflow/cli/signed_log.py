"""How ``leadflow verify`` reports the signed event log."""

from __future__ import annotations

from collections.abc import Sequence

from projections.log_verify import LogProblem, LogVerification


def render_log_verification(result: LogVerification) -> str:
    lines = [f"signed log: {p}" for p in result.problems]
    lines += result.notes
    verdict = "OK" if result.ok else "FAILED"
    anchored = (
        "not anchored by a signed head"
        if result.signed_up_to is None
        else f"the latest signed head that matches is at notification {result.signed_up_to:,}"
    )
    lines.append(
        f"signed log {verdict}: {result.events_checked:,} events checked against the log "
        f"chain, {len(result.problems):,} problems; {anchored}"
    )
    return "\n".join(lines)


def render_log_problems(problems: Sequence[LogProblem]) -> str:
    """The signed log's problems that concern one history, one line each."""
    return "".join(f"signed log: {p}\n" for p in problems)


def render_unknown_lead_in_damaged_log(ref: str, result: LogVerification) -> str:
    return (
        f"leadflow history: no lead {ref!r} in the event store, and the signed log is "
        f"damaged ({len(result.problems)} problems; the first: {result.problems[0]}); "
        "run leadflow verify\n"
    )
