"""Where the relay's pages come from: its own process, or a page reader process.

``LocalPages`` reads, decodes and encodes in the relay's process. ``ReaderProcess``
does it in a child process with its own connection to the event store
(``LEADFLOW_STREAM_RELAY_READER_PROCESS``): the relay's process then only sends, confirms
and saves its position, and on two cores the relay is bound by the larger half instead
of the sum. Under a backlog the child reads the next page while the relay sends the
current one and waits for the broker to confirm the one before.

The child holds nothing that matters: the lock, the epoch, the producer and the position
stay in the relay's process, and a page is only ever records to send. A child that
dies, or cannot read, makes the relay's read fail as a read in its own process would
(a transient failure: the relay backs off and starts over with a new child); a relay
that dies closes the pipe, and its child ends.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from contextlib import suppress
from multiprocessing.connection import Connection
from typing import Protocol

from adapters.logging import error_text
from adapters.stream_settings import StreamSettings
from consumers.failure_policy import ReportedFailure, classify
from consumers.relay.collection import collecting_less
from consumers.relay.pages import Page, PageReader
from service.application import LeadflowApp

_FORKS = multiprocessing.get_context("forkserver")
CLOSE_SECONDS = 10.0


class PageSource(Protocol):
    def prefetch(self, after: int) -> None:
        """Start reading the page after ``after``, if that pays (``read`` returns it)."""

    def read(self, after: int) -> Page:
        """The page after ``after``."""

    def forget(self) -> None:
        """Drop followed state: the next page read may not follow the last."""

    def close(self) -> None: ...


class LocalPages:
    """Pages read in the relay's own process, when asked for."""

    def __init__(self, reader: PageReader) -> None:
        self._reader = reader

    def prefetch(self, after: int) -> None:
        return None

    def read(self, after: int) -> Page:
        return self._reader.read(after)

    def forget(self) -> None:
        self._reader.forget()

    def close(self) -> None:
        self._reader.forget()


# what the relay asks its reader: a page after a position, to forget, or to end
Request = int | str | None


class ReaderProcess:
    """Pages read by a child process ahead of the relay: while the relay sends a page and
    waits for the broker to confirm the one before, the child reads the next."""

    def __init__(
        self,
        open_app: Callable[[], LeadflowApp],
        stream: StreamSettings,
        preload: Sequence[str] = (),
    ) -> None:
        """``open_app`` (pickled to the child, so a module-level function or a partial of
        one) opens the relay's event store; ``preload``: modules the fork server imports
        once, so that each child starts in milliseconds."""
        _FORKS.set_forkserver_preload([__name__, *preload])
        here, there = _FORKS.Pipe()
        self._process = _FORKS.Process(
            target=serve,
            args=(there, open_app, stream),
            name="leadflow-relay-reader",
            daemon=True,
        )
        self._process.start()
        there.close()
        self._conn = here
        self._page_size = stream.relay_batch_size
        self._pending: int | None = None  # the page asked for and not yet received

    def prefetch(self, after: int) -> None:
        if self._pending is None:
            self._ask(after)

    def read(self, after: int) -> Page:
        if self._pending is not None and self._pending != after:
            with suppress(ReportedFailure):  # a page not wanted any more (a failure's too)
                self._receive()
        if self._pending is None:
            self._ask(after)
        page = self._receive()
        if len(page) == self._page_size:  # a backlog: read the next page while this one goes
            with suppress(ReportedFailure):  # a child gone: the next read says so
                self._ask(page[-1].records[0].origin.id)
        return page

    def forget(self) -> None:
        with suppress(OSError):  # a child gone: the next read says so
            self._conn.send("forget")

    def close(self) -> None:
        with suppress(OSError, EOFError):
            if self._pending is not None and self._conn.poll(CLOSE_SECONDS):
                self._conn.recv()  # a page read ahead: the child waits to hand it over
            self._conn.send(None)
        self._process.join(CLOSE_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(CLOSE_SECONDS)
        self._conn.close()

    def _ask(self, after: int) -> None:
        try:
            self._conn.send(after)
        except OSError as error:
            raise self._gone(error) from error
        self._pending = after

    def _receive(self) -> Page:
        try:
            kind, body = self._conn.recv()
        except (EOFError, OSError) as error:
            raise self._gone(error) from error
        finally:
            self._pending = None
        if kind == "page":
            page: Page = body
            return page
        failure, text = body
        raise ReportedFailure(failure, text)

    def _gone(self, error: BaseException) -> ReportedFailure:
        self._process.join(1.0)
        return ReportedFailure(
            "transient",
            f"the relay's page reader process ended (exit code {self._process.exitcode}): "
            f"{error_text(error)}",
        )


def serve(conn: Connection, open_app: Callable[[], LeadflowApp], stream: StreamSettings) -> None:
    """The child: answer each request with a page (or the failure reading it) until told
    to end or the relay's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the relay decides when its reader ends
    app = open_app()
    try:
        reader = PageReader(
            app, stream.events_topic, stream.qualification_topic, stream.relay_batch_size
        )
        with collecting_less():
            _answer(conn, reader)
    finally:
        app.close()


def _answer(conn: Connection, reader: PageReader) -> None:
    while True:
        try:
            request: Request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        if request == "forget":
            reader.forget()
            continue
        assert isinstance(request, int)
        try:
            conn.send(("page", reader.read(request)))
        except Exception as error:  # noqa: BLE001 - reported to the relay, classified
            conn.send(("failure", (classify(error), error_text(error))))
