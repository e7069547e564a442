"""What the API's requests share: the settings, the application on the event store, and
the one thread this process writes on.

Commands and engagement intake run on that writer thread, one at a time: a single
thread keeps one warm connection to the store (the request threads would each open
their own), and running them in turn is what the store does anyway. Read-model
catch-ups take the same lock the writer holds, so they never interleave with a write."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from fastapi import Request

from adapters.settings import Settings
from service.application import LeadflowApp

T = TypeVar("T")


@dataclass
class ApiState:
    settings: Settings
    app: LeadflowApp
    writing: threading.Lock = field(default_factory=threading.Lock)
    _writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="leadflow-writer")
    )

    async def write(self, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``action(*args, **kwargs)`` on the writer thread, under the write lock, with
        the request's log context."""
        context = contextvars.copy_context()
        call = partial(context.run, self._locked, partial(action, *args, **kwargs))
        return await asyncio.get_running_loop().run_in_executor(self._writer, call)

    def _locked(self, call: Callable[[], T]) -> T:
        with self.writing:
            return call()

    def close(self) -> None:
        self._writer.shutdown(wait=True)


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
