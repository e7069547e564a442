"""Request bodies read as leadflow reads every JSON text (``domain.input_limits.load_json``):
bounded nesting and numbers, no NaN, and no key given twice in one object (a proxy in front
may read the first value where Python keeps the last)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from domain.input_limits import JsonRefused, load_json


class _JsonBodyRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as error:
                raise HTTPException(400, f"not UTF-8 at byte {error.start}") from None
            try:
                self._json = load_json(text, unique_keys=True)
            except json.JSONDecodeError:
                raise  # FastAPI answers it as invalid JSON, naming the position
            except JsonRefused as error:
                raise HTTPException(400, str(error)) from None
        return self._json


class JsonBodyRoute(APIRoute):
    """An API route whose request body is read by ``_JsonBodyRequest``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await handle(_JsonBodyRequest(request.scope, request.receive))

        return handler
