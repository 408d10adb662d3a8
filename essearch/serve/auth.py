"""API keys: `Authorization: Bearer <key>` on every route but `/healthz`.

Keys are compared in constant time (`hmac.compare_digest` against every configured key, no early
exit) and never logged or echoed. A key may be limited to some aliases. Browsers cannot send a
Bearer header when opening a page, so the key is also accepted as the password of HTTP Basic auth
(the browser asks once and then sends it with the playground's own requests) — except on Dify's
`/retrieval`, whose contract is Bearer only.

The check is a pure ASGI middleware, so no route can be forgotten and it adds no per-request
framework overhead. Dify's route gets Dify's error shape (`error_code` 1001/1002, HTTP 403).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from essearch.settings import ServeKey

#: Routes reachable without a key.
OPEN_PATHS = frozenset({"/healthz"})
DIFY_PATH = "/retrieval"
#: Pages a person opens in a browser: a 401 there asks for the key as a Basic-auth password.
BROWSER_PAGES = frozenset({"/", "/playground", "/docs", "/redoc"})


@dataclass(frozen=True)
class Caller:
    """Who is calling: `indices` None means every served alias."""

    authenticated: bool
    indices: frozenset[str] | None = None

    def may_use(self, alias: str) -> bool:
        return self.indices is None or alias in self.indices


ANONYMOUS = Caller(authenticated=False)


class AuthFailure(Exception):
    def __init__(self, reason: str, *, malformed: bool) -> None:
        super().__init__(reason)
        self.malformed = malformed


class KeyRing:
    """The configured keys, as bytes for `compare_digest`."""

    def __init__(self, keys: list[ServeKey]) -> None:
        self._keys = [
            (k.key.get_secret_value().encode(), frozenset(k.indices) if k.indices else None)
            for k in keys
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def match(self, presented: str) -> Caller | None:
        """The caller for this key, or None; every key is compared (no timing shortcut)."""
        candidate = presented.encode()
        found: Caller | None = None
        for secret, indices in self._keys:
            if hmac.compare_digest(candidate, secret) and found is None:
                found = Caller(authenticated=True, indices=indices)
        return found

    def authenticate(self, header: str | None, *, allow_basic: bool = True) -> Caller:
        if not self.enabled:
            return ANONYMOUS
        if not header:
            raise AuthFailure(
                "missing Authorization header; expected 'Bearer <key>'", malformed=True
            )
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            presented = value
        elif scheme.lower() == "basic" and value and allow_basic:
            try:
                presented = base64.b64decode(value, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                raise AuthFailure("invalid Basic credentials", malformed=True) from None
        else:
            raise AuthFailure(
                "invalid Authorization header format; expected 'Bearer <key>'", malformed=True
            )
        caller = self.match(presented)
        if caller is None:
            raise AuthFailure("authorization failed: unknown API key", malformed=False)
        return caller


class AuthMiddleware:
    """Rejects unauthenticated requests; puts the `Caller` in `scope["state"]["caller"]`."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        caller = ANONYMOUS
        if path not in OPEN_PATHS:
            header = _header(scope, b"authorization")
            try:
                caller = self.keys.authenticate(header, allow_basic=path != DIFY_PATH)
            except AuthFailure as failure:
                await _reject(scope, send, failure, dify=path == DIFY_PATH)
                return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _reject(scope: Scope, send: Send, failure: AuthFailure, *, dify: bool) -> None:
    body: dict[str, Any]
    headers = [(b"content-type", b"application/json")]
    if dify:  # Dify's documented codes; AccessDeniedException is HTTP 403
        status = 403
        body = {"error_code": 1001 if failure.malformed else 1002, "error_msg": str(failure)}
    else:
        status = 401
        body = {"error": {"type": "unauthorized", "message": str(failure)}}
        challenge = b'Bearer realm="essearch"'
        path = str(scope.get("path", ""))
        if path in BROWSER_PAGES or path.startswith("/playground/"):
            challenge = b'Basic realm="essearch (the password is your API key)"'
        headers.append((b"www-authenticate", challenge))
    payload = json.dumps(body).encode()
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def caller_of(scope_state: Any) -> Caller:
    """The Caller the middleware stored (anonymous when keys are off)."""
    if isinstance(scope_state, dict):
        return scope_state.get("caller", ANONYMOUS)
    return getattr(scope_state, "caller", ANONYMOUS)
