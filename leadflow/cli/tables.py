"""Plain-text tables for terminal output."""

from __future__ import annotations

from collections.abc import Sequence

Cell = str | int | float | None


def _text(cell: Cell) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, float):
        return f"{cell:,.2f}"
    if isinstance(cell, int):
        return f"{cell:,}"
    return cell


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], title: str = "") -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    texts = [[_text(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and rows
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [title] if title else []
    out += [line(headers), line(["-" * w for w in widths]), *(line(r) for r in texts)]
    return "\n".join(out)
