"""What every HTTP request to the console passes before any route runs, and before its body is read.

- Cross-site requests: a state-changing request (any method but GET, HEAD, OPTIONS) must carry the
  `X-Gatebox-CSRF` header, which a page of another origin cannot add without a CORS preflight (the
  console answers none), and when it says where it comes from (Origin, else Referer) it must come from
  the console's own origin or one of `console.allowed_origins`. Refused with 403 and logged.
- Sizes: a body over its route's limit is refused, at once when its Content-Length says so, otherwise
  counted as it streams and cut off at the limit (413, logged).
- Sessions: a route that needs one reads no byte of body without it (401), so an anonymous upload is
  never spooled to disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CSRF_HEADER = "X-Gatebox-CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes its limit. FastAPI lets an HTTPException raised
    while it reads a body through (any other error there would become a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of `url` as browsers compare origins (lower case, no default port);
    None when it has none (`null`, a path, another scheme)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return f"{parts.scheme}://{host}"


class RequestGuard:
    """ASGI middleware; `body_limit(path)` is the largest body a route takes, `needs_session(path)`
    whether it is for logged-in operators only and `has_session(connection)` whether the request carries
    a live session (called in a worker thread: it may read the database)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Iterable[str],
        body_limit: Callable[[str], int],
        needs_session: Callable[[str], bool],
        has_session: Callable[[HTTPConnection], bool],
    ) -> None:
        self.app = app
        self._allowed = frozenset(origin for origin in map(origin_of, allowed_origins) if origin)
        self._body_limit = body_limit
        self._needs_session = needs_session
        self._has_session = has_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        method, path = scope["method"], scope["path"]
        if method not in SAFE_METHODS and (why := self._cross_site(connection)):
            await self._refuse(connection, send, 403, "cross-site request refused", why)
            return
        if self._needs_session(path) and not await run_in_threadpool(self._has_session, connection):
            await _answer(connection, send, 401, "log in first")
            return
        limit = self._body_limit(path)
        length = connection.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(connection, send, 413, f"request body larger than {limit} bytes",
                               f"Content-Length {length[:20]!r} over {limit}")  # fmt: skip
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if started:  # nothing left to answer with: the connection just ends
                return
            await self._refuse(connection, send, 413, f"request body larger than {limit} bytes",
                               f"streamed body over {limit}")  # fmt: skip
            return
        if received > limit:  # answered by the app's own handler of the HTTPException
            log.warning("security: refused %s %s from %s: streamed body over %d", method, path,
                        _client(connection), limit)  # fmt: skip

    def _cross_site(self, connection: HTTPConnection) -> str | None:
        """Why the request may come from another site's page; None when it cannot."""
        headers = connection.headers
        if not headers.get(CSRF_HEADER):
            return f"no {CSRF_HEADER} header"
        source, claimed = "Origin", headers.get("origin")
        if claimed is None:
            source, claimed = "Referer", headers.get("referer")
        if claimed is None:
            return None  # not a browser (a script, curl): the header is what counts
        own = origin_of(f"{connection.scope['scheme']}://{headers.get('host', '')}")
        origin = origin_of(claimed)
        if origin is None or origin not in self._allowed | {own}:
            return f"{source} {claimed[:200]!r} is not this console's"
        return None

    @staticmethod
    async def _refuse(connection: HTTPConnection, send: Send, status: int, detail: str, why: str) -> None:
        scope = connection.scope
        log.warning("security: refused %s %s from %s: %s", scope["method"], scope["path"], _client(connection), why)
        await _answer(connection, send, status, detail)


async def _answer(connection: HTTPConnection, send: Send, status: int, detail: str) -> None:
    """An answer given without reading the body: the server then closes the connection rather than read it."""
    response = JSONResponse({"detail": detail}, status, headers={"Connection": "close"})
    await response(connection.scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _client(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "?"
