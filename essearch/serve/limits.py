"""Bounds on what one request may ask for: body size, k/from, filter depth, batch size.

A 413 is sent before the body is read when Content-Length says it is too big, and as soon as a
streamed body passes the limit otherwise. The other bounds raise FastAPI's 422, naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(send)
                return
        seen = 0
        refused = False

        async def limited_receive() -> Message:
            # A body without Content-Length (chunked) is counted as it arrives; past the limit
            # the 413 goes out at once and the app is told the client left.
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after a 413 nothing else may be sent
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _too_large(self, send: Send) -> None:
        payload = json.dumps(
            {
                "error": {
                    "type": "request_too_large",
                    "message": f"request body is larger than {self.max_bytes} bytes "
                    "(ESSEARCH_SERVE_MAX_BODY_BYTES)",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def invalid(
    field: tuple[str | int, ...], message: str, value: Any = None
) -> RequestValidationError:
    """A 422 naming `field` (the body path), like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", *field), "msg": message, "input": value}]
    )


def check_at_most(field: tuple[str | int, ...], value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise invalid(field, f"must be at most {limit} (ESSEARCH_SERVE_{setting})", value)


def depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0, {"a": 1} is 1); iterative, so any input."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
        else:
            continue
        deepest = max(deepest, level + 1)
    return deepest


def check_depth(field: tuple[str | int, ...], value: Any, limit: int) -> None:
    if depth(value) > limit:
        raise invalid(
            field, f"is nested deeper than {limit} levels (ESSEARCH_SERVE_MAX_FILTER_DEPTH)"
        )
