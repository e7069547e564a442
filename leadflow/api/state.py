"""What the API's requests share: the settings, the application on the event store, and
the one thread this process writes on.

Commands and engagement intake run on that writer thread, one at a time: a single
thread keeps one warm connection to the store (the request threads would each open
their own), and running them in turn is what the store does anyway. Commands that arrive
while it is busy are decided together in one ``handle_many`` transaction when they name
different leads and deals (group commit: each keeps its own outcome or refusal, and
their answers are sent once it has committed); a command naming a lead or deal already
in the batch waits for the next one, so each answer shows the state its command left.
Read-model catch-ups take the same lock the writer holds, so they never interleave with
a write."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import structlog
from fastapi import Request

from adapters.settings import Settings
from domain import commands as c
from domain.errors import DomainError
from service.application import LeadflowApp
from service.ids import normalise_ref
from service.unit_of_work import Outcome

T = TypeVar("T")

MAX_BATCH = 64

log = structlog.get_logger("leadflow.api.state")


@dataclass
class _Queued:
    """A command waiting for the writer, and how its answer is made and delivered."""

    command: c.Command
    answer: Callable[[Outcome], Any]
    context: contextvars.Context
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    names: frozenset[str]

    def settled(self, outcome: Outcome | BaseException) -> _Settled:
        """The answer, made in the request's log context, or the exception, for the request."""
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            result: Any = self.context.run(self.answer, outcome)
        except Exception as error:  # noqa: BLE001 -- raised again in the request, which answers it
            return self.future, None, error
        return self.future, result, None


_Settled = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _deliver(batch: list[_Queued], outcomes: list[Outcome | BaseException]) -> None:
    """Every answer to its request: one wake-up of each event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
    for queued, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(queued.loop, []).append(queued.settled(outcome))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[_Settled]) -> None:
    for future, result, error in settled:
        if future.done():  # the client went away
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def names_of(command: c.Command) -> frozenset[str]:
    """The leads and deals a command names, as the batch compares them."""
    names = set()
    for kind in ("lead", "deal"):
        ref = getattr(command, kind, None)
        if isinstance(ref, str) and ref:
            names.add(f"{kind}:{_comparable(ref)}")
    return frozenset(names)


def _comparable(ref: str) -> str:
    try:
        return UUID(ref).hex
    except ValueError:
        return normalise_ref(ref)


@dataclass
class ApiState:
    settings: Settings
    app: LeadflowApp
    writing: threading.Lock = field(default_factory=threading.Lock)
    _writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="leadflow-writer")
    )
    _queued: deque[_Queued] = field(default_factory=deque)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock)
    _draining: bool = False

    async def write(self, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``action(*args, **kwargs)`` on the writer thread, under the write lock, with
        the request's log context."""
        context = contextvars.copy_context()
        call = partial(context.run, self._locked, partial(action, *args, **kwargs))
        return await asyncio.get_running_loop().run_in_executor(self._writer, call)

    async def command(self, command: c.Command, answer: Callable[[Outcome], T]) -> T:
        """``command`` applied on the writer thread, possibly with others in one
        transaction; ``answer(outcome)`` is made there once it has committed (a refusal
        raises here as ``handle`` would raise it)."""
        loop = asyncio.get_running_loop()
        queued = _Queued(
            command,
            answer,
            contextvars.copy_context(),
            loop,
            loop.create_future(),
            names_of(command),
        )
        with self._queue_lock:
            self._queued.append(queued)
            start = not self._draining
            self._draining = True
        if start:
            self._writer.submit(self._drain)
        result: T = await queued.future
        return result

    def _locked(self, call: Callable[[], T]) -> T:
        with self.writing:
            return call()

    def _drain(self) -> None:
        """One batch of queued commands; the next goes behind whatever else waits for the
        writer (engagement intake, If-Match commands), so a steady flow of commands never
        starves them."""
        with self._queue_lock:
            batch = self._next_batch()
            if not batch:
                self._draining = False
                return
        try:
            self._locked(partial(self._apply, batch))
        finally:
            try:
                self._writer.submit(self._drain)
            except RuntimeError:  # shutting down: what is still queued is not applied
                log.warning("commands_not_applied_at_shutdown", queued=len(self._queued))

    def _next_batch(self) -> list[_Queued]:
        """The oldest queued commands that name no lead or deal twice (in arrival order)."""
        batch: list[_Queued] = []
        named: set[str] = set()
        while self._queued and len(batch) < MAX_BATCH:
            head = self._queued[0]
            if named & head.names:
                break
            batch.append(self._queued.popleft())
            named |= head.names
        return batch

    def _apply(self, batch: list[_Queued]) -> None:
        outcomes: list[Outcome | DomainError] | None = None
        try:
            with structlog.contextvars.bound_contextvars(command_batch=len(batch)):
                outcomes = self.app.handle_many([q.command for q in batch])
        except Exception as error:  # the transaction failed: every command in it did
            log.error("command_batch_failed", size=len(batch), exc_info=error)
            _deliver(batch, [error] * len(batch))
            return
        _deliver(batch, list(outcomes))

    def close(self) -> None:
        self._writer.shutdown(wait=True)


async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
