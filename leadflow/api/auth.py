"""Bearer authentication, the role check and the per-key rate limit.

Checked tokens are trusted for ``key_cache_seconds``: a revocation takes effect within
that time without a database read on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.api_keys import ApiKey, ApiKeys, token_hash
from adapters.settings import ApiSettings
from leadflow.api.problems import ApiProblem
from leadflow.api.roles import Permission, allowed

_bearer = HTTPBearer(auto_error=False, description="an API key: leadflow api-key create")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Gate:
    """Who is asking (tokens to keys, cached) and how fast each key may ask."""

    keys: ApiKeys
    settings: ApiSettings
    _checked: dict[str, tuple[ApiKey | None, float]] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def key_of(self, token: str) -> ApiKey | None:
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._checked.get(digest)
        if cached is not None and now - cached[1] < self.settings.key_cache_seconds:
            return cached[0]
        key = self.keys.authenticate(token)
        if len(self._checked) > 10_000:
            self._checked.clear()
        self._checked[digest] = (key, now)
        return key

    def forget(self) -> None:
        """Check every token again (a key was revoked here)."""
        self._checked.clear()

    def take(self, key: ApiKey) -> float | None:
        """None when the key may send this request; else seconds until it may."""
        rate = self.settings.rate_per_second
        if rate <= 0:
            return None
        now = time.monotonic()
        burst = float(self.settings.rate_burst)
        bucket = self._buckets.setdefault(key.key_id, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / rate


def gate_of(request: Request) -> Gate:
    gate: Gate = request.app.state.gate
    return gate


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
    """A dependency: the caller's key, when it holds ``permission`` (else 401/403/429).

    Async, so it runs on the event loop's thread, which owns the keys' connection."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        if credentials is None:
            raise ApiProblem(
                401,
                "unauthorized",
                "Authentication required",
                "send Authorization: Bearer <API key>",
                headers=_CHALLENGE,
            )
        gate = gate_of(request)
        key = gate.key_of(credentials.credentials)
        if key is None:
            raise ApiProblem(
                401,
                "unauthorized",
                "Invalid API key",
                "the token is unknown or its key was revoked",
                headers=_CHALLENGE,
            )
        structlog.contextvars.bind_contextvars(api_key=key.name)
        if not allowed(key.role, permission):
            raise ApiProblem(
                403,
                "forbidden",
                "Not allowed for this role",
                f"key {key.name!r} has role {key.role!r}, which may not {permission.value}",
                role=key.role,
                permission=permission.value,
            )
        wait = gate.take(key)
        if wait is not None:
            raise ApiProblem(
                429,
                "rate-limited",
                "Too many requests",
                f"key {key.name!r} exceeds {gate.settings.rate_per_second:g} requests per second",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        return key

    return caller
