"""Optional bearer tokens with two roles: ``read`` (every GET and the live WebSocket) and
``admin`` (also every request that changes state: POST, PUT, PATCH, DELETE). Without
configured tokens the API is open (it binds 127.0.0.1 by default). ``/health``, the
OpenAPI pages and the dashboard page with its static files (no data in them) stay open so
probes and humans can find their way; ``/metrics`` needs a
read token like any other GET (Prometheus sends it with ``authorization.credentials``).
A missing or unknown token is a 401 JSON error (``WWW-Authenticate: Bearer``), a read token
on a state-changing request a 403; a refused WebSocket is closed with code 1008."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Literal
from urllib.parse import parse_qsl

import msgspec

Role = Literal["read", "admin"]
OPEN_PATHS: Final = frozenset(
    {"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
)
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Token(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: str
    role: Role = "read"
    name: str | None = None


def parse_env_tokens(text: str) -> list[Token]:
    """``read:abc,admin:xyz`` (from ``TRADELOG_AUTH_TOKENS``) → tokens.

    >>> [t.role for t in parse_env_tokens("read:abc, admin:xyz")]
    ['read', 'admin']
    """
    out: list[Token] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        role, sep, token = part.partition(":")
        if not sep or role not in ("read", "admin") or not token:
            raise ValueError(f"auth token {part!r} must be read:TOKEN or admin:TOKEN")
        out.append(Token(token=token, role=role))  # type: ignore[arg-type]
    return out


class BearerAuth:
    """ASGI middleware enforcing the tokens (HTTP and WebSocket)."""

    def __init__(self, app: App, tokens: list[Token]) -> None:
        self.app = app
        self.tokens = [(t.token.encode(), t.role) for t in tokens]

    def _role(self, presented: str | None) -> Role | None:
        if not presented:
            return None
        given = presented.encode()
        role: Role | None = None
        for token, r in self.tokens:
            if hmac.compare_digest(token, given):
                role = r  # keep looping: constant work whatever matches
        return role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path = scope.get("path", "")
        if (
            not self.tokens
            or kind not in ("http", "websocket")
            or path in OPEN_PATHS
            or (kind == "http" and scope["method"] in ("GET", "HEAD") and _is_page(path))
        ):
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        role = self._role(presented)
        needs_admin = kind == "http" and scope["method"] in WRITE_METHODS
        if role is None or (needs_admin and role != "admin"):
            status = 401 if role is None else 403
            message = (
                "missing or unknown bearer token"
                if role is None
                else "this request needs the admin role"
            )
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": message})
                return
            body = msgspec.json.encode({"error": message})
            headers = [(b"content-type", b"application/json")]
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _is_page(path: str) -> bool:
    """The dashboard page and its static assets hold no data (the page asks for a token
    in ``#token=…`` and sends it with every API request), so a browser can load them."""
    return path == "/" or path.startswith("/static/")


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    if scope["type"] == "websocket":  # browsers cannot set headers on a WebSocket
        query: str = scope.get("query_string", b"").decode("latin-1")
        for key, token in parse_qsl(query, keep_blank_values=True):
            if key == "token":  # percent-decoded: a token may hold '+', '/', '='
                return token
    return None
