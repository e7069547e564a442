"""Every request: a request id (``X-Request-ID``, taken from the client when sane) on the
response and bound to every log line, one access log line, and the body size limit."""

from __future__ import annotations

import json
import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.api.problems import PROBLEM_JSON, TYPE_PREFIX

log = structlog.get_logger("leadflow.api")

REQUEST_ID = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class _TooLarge(Exception):
    pass


def _problem(status: int, kind: str, title: str, detail: str, path: str) -> bytes:
    body = {"type": TYPE_PREFIX + kind, "title": title, "status": status, "detail": detail}
    return json.dumps({**body, "instance": path}).encode()


class RequestMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(REQUEST_ID.encode(), b"").decode("latin-1")
        request_id = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        sent_start = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent_start
            if message["type"] == "http.response.start":
                status = message["status"]
                sent_start = True
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID.encode(), request_id.encode()),
                ]
            await send(message)

        async def answer(code: int, kind: str, title: str, detail: str) -> None:
            body = _problem(code, kind, title, detail, scope["path"])
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [(b"content-type", PROBLEM_JSON.encode())],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})

        limit = self.max_body_bytes
        too_large = f"the body exceeds {limit} bytes (LEADFLOW_API_MAX_BODY_BYTES)"
        length = headers.get(b"content-length", b"")
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            if length.isdigit() and int(length) > limit:
                await answer(413, "payload-too-large", "Payload too large", too_large)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except _TooLarge:
            if not sent_start:
                await answer(413, "payload-too-large", "Payload too large", too_large)
        except Exception as error:  # last line of defence: a problem, never a traceback
            log.error("unexpected_error", error_type=type(error).__name__, exc_info=error)
            if not sent_start:
                detail = f"see the server log for request id {request_id}"
                await answer(500, "internal", "Internal error", detail)
        finally:
            log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
