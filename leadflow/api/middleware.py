"""Every request: a request id (``X-Request-ID``, taken from the client when sane) on the
response and bound to every log line, one access log line (with the route's template, not
the path), and the body size limit."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Callable

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.api.problems import PROBLEM_JSON, TYPE_PREFIX

log = structlog.get_logger("leadflow.api")

REQUEST_ID = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class _RequestIds:
    """Ids for requests that bring none: this process's random prefix and a counter (as
    unique as a fresh UUID each, without asking the OS for randomness per request)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


class _TooLarge(HTTPException):
    """A body that grew past the limit while read (no Content-Length told its size)."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class _Exchange:
    """One request and its answer, as the middleware sees them."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        request_id: Callable[[], str],
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.answered = False
        self.started = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID.encode(), b"").decode("latin-1")
        self.request_id = given if _SANE_ID.fullmatch(given) else request_id()
        self.log = logger
        self.declared_length = headers.get(b"content-length", b"")
        self.content_type = headers.get(b"content-type", b"").decode("latin-1")

    @property
    def too_large(self) -> str:
        return f"the body exceeds {self.limit} bytes (LEADFLOW_API_MAX_BODY_BYTES)"

    def body_not_json(self) -> bool:
        """A request with a body whose declared type is not JSON (none declared is read as
        JSON, as the API always has)."""
        if self.scope["method"] not in ("POST", "PATCH", "PUT"):
            return False
        declared = self.content_type.split(";", 1)[0].strip().lower()
        return bool(declared) and declared != "application/json" and not declared.endswith("+json")

    def declared_too_large(self) -> bool:
        return self.declared_length.isdigit() and int(self.declared_length) > self.limit

    def log_line(self, status: int) -> None:
        # the route's template (/v1/leads/{ref}), never the path: a ref may be an email
        route = getattr(self.scope.get("route"), "path", None)
        self.log.info(
            "http_request",
            method=self.scope["method"],
            route=route or "unmatched",
            status=status,
            ms=round((time.perf_counter() - self.started) * 1000, 2),
        )

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise _TooLarge(self.too_large)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.answered = True
            message["headers"] = [
                *message.get("headers", []),
                (REQUEST_ID.encode(), self.request_id.encode()),
            ]
            self.log_line(message["status"])  # before the client can have its answer
        await self._send(message)

    async def problem(self, status: int, kind: str, title: str, detail: str) -> None:
        body = {"type": TYPE_PREFIX + kind, "title": title, "status": status, "detail": detail}
        content = json.dumps({**body, "instance": self.scope["path"]}).encode()
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode())],
            }
        )
        await self.send({"type": "http.response.body", "body": content})


class RequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._request_ids = _RequestIds()
        # bound once: structlog's lazy proxy would build a logger on every request
        self._log: structlog.typing.FilteringBoundLogger = log.bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(
            scope, receive, send, self.max_body_bytes, self._request_ids.next, self._log
        )
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=exchange.request_id)
        try:
            if exchange.declared_too_large():
                await exchange.problem(
                    413, "payload-too-large", "Payload too large", exchange.too_large
                )
            elif exchange.body_not_json():
                await exchange.problem(
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    "send the body as JSON (Content-Type: application/json)",
                )
            else:
                await self.app(scope, exchange.receive, exchange.send)
        except _TooLarge:
            if not exchange.answered:
                await exchange.problem(
                    413, "payload-too-large", "Payload too large", exchange.too_large
                )
        except Exception as error:  # noqa: BLE001 -- last line of defence: a problem, never a traceback
            self._log.error("unexpected_error", error_type=type(error).__name__, exc_info=error)
            if not exchange.answered:
                detail = f"see the server log for request id {exchange.request_id}"
                await exchange.problem(500, "internal", "Internal error", detail)
        finally:
            if not exchange.answered:
                exchange.log_line(499)  # the client went away before an answer
            structlog.contextvars.clear_contextvars()
