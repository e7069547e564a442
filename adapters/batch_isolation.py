"""Finding the bad item in a batch: the batch is tried whole; when it fails for good, its
halves are tried on their own, down to the single item that fails, which is set aside;
every other item is applied. A clean batch costs one try; one bad item in n costs about
2·log2(n) more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def isolate(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], list[R]],
    set_aside: Callable[[T, Exception], R],
    *,
    is_items_fault: Callable[[Exception], bool],
    on_split: Callable[[int, Exception], None] = lambda size, error: None,
) -> list[R]:
    """``attempt(items)``: one result per item, in order. A failure that
    ``is_items_fault`` accepts splits the batch (``on_split`` is told) until a single item
    fails: its result is ``set_aside(item, error)``. Any other failure is raised."""
    if not items:
        return []
    try:
        return attempt(items)
    except Exception as error:
        if not is_items_fault(error):
            raise
        if len(items) == 1:
            return [set_aside(items[0], error)]
        on_split(len(items), error)
        middle = len(items) // 2
        return [
            result
            for half in (items[:middle], items[middle:])
            for result in isolate(
                half, attempt, set_aside, is_items_fault=is_items_fault, on_split=on_split
            )
        ]
