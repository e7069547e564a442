"""How ``leadflow verify`` reports the signed event log."""

from __future__ import annotations

from projections.log_verify import LogVerification


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
