"""What stands between the network and the API: a bearer token, a header-read timeout and a
connection limit.

aiohttp has no timeout for reading a request's headers, so a client that opens
connections and trickles bytes (or sends nothing) held them for as long as it liked: 20
half-open connections stayed open 30 s and more. :class:`GuardedSite` wraps each
connection's protocol: a request's headers must be complete within ``header_timeout_s`` of
its first byte (or of the connection opening), and connections beyond
``max_connections`` are closed at once.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.web_runner import BaseSite

from agent.api.config import ApiConfig

log = structlog.get_logger("agent.api.guard")

#: Paths served without the token: a load balancer's health check.
OPEN_PATHS = frozenset({"/healthz"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Require ``Authorization: Bearer <token>`` (or ``?access_token=``, for a browser)."""
    expected = token.encode()

    @web.middleware
    async def check(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        given = ""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        elif "access_token" in request.query:
            given = request.query["access_token"]
        if not hmac.compare_digest(given.encode(), expected):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="api"'})
        return await handler(request)

    return check


def form_post_problem(request: web.Request, *, token: str) -> str | None:
    """Why a dashboard form post must be refused, or None to accept it.

    The bearer token (when configured) is checked by :func:`bearer_middleware` like on any
    request; a form carries it in its action URL. On top of it a post must come from a
    page of this server (``Origin``, else ``Referer``, names the host the request was sent
    to), so another site open in the operator's browser cannot post a form here. Without
    a token (loopback only) the host must also be a loopback name, so a DNS name rebound to
    127.0.0.1 does not pass as the same origin.
    """
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return "a dashboard form must be posted from the dashboard (no Origin or Referer)"
    if urlsplit(source).netloc.lower() != request.host.lower():
        return "a dashboard form must be posted from the dashboard (cross-origin post)"
    if not token and not is_loopback(urlsplit(f"//{request.host}").hostname or ""):
        return "without api.token the dashboard accepts forms on a loopback address only"
    return None


def _content_length(head: bytes) -> int | None:
    """The body length a request head announces (0 if none; None for a chunked body)."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = max(0, int(value.strip()))
            except ValueError:
                return 0
    return length


class _Guarded(asyncio.Protocol):
    """One connection: forwards to aiohttp's protocol, closing slow or surplus clients."""

    def __init__(self, inner: asyncio.Protocol, site: GuardedSite) -> None:
        self.inner = inner
        self.site = site
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.in_headers = True
        self.head = b""
        self.body_left: int | None = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if len(self.site.open) >= self.site.max_connections:
            log.warning("api_connection_refused", reason="connection limit",
                        limit=self.site.max_connections)
            transport.abort()
            return
        self.site.open.add(self)
        self.inner.connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self.timer = asyncio.get_running_loop().call_later(self.site.header_timeout_s,
                                                           self._expire)

    def _expire(self) -> None:
        self.timer = None
        if self.transport is not None and self.in_headers:
            log.info("api_connection_closed", reason="headers not received in time",
                     timeout_s=self.site.header_timeout_s)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self._scan(data)
        self.inner.data_received(data)

    def _scan(self, data: bytes) -> None:
        """Follow request boundaries: each request's headers must arrive in time; the
        clock starts at its first byte (keep-alive and pipelined requests too)."""
        while data:
            if self.body_left is None:  # a chunked body: stop watching this connection
                return
            if not self.in_headers:
                used = min(self.body_left, len(data))
                self.body_left -= used
                data = data[used:]
                if self.body_left == 0 and data:
                    self.in_headers = True
                continue
            if self.timer is None:
                self._arm()
            block = self.head + data
            end = block.find(b"\r\n\r\n")
            if end < 0:
                self.head = block[-8192:]
                return
            self.in_headers = False
            if self.timer is not None:
                self.timer.cancel()
            self.timer = None
            self.body_left = _content_length(block[:end])
            data = block[end + 4:]
            self.head = b""
            if self.body_left == 0:
                self.in_headers = True
    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self in self.site.open:
            self.site.open.discard(self)
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class GuardedSite(BaseSite):
    """A TCP site whose connections are wrapped by :class:`_Guarded`."""

    def __init__(self, runner: web.AppRunner, config: ApiConfig) -> None:
        super().__init__(runner)
        self._host = config.host
        self._port = config.port
        self.header_timeout_s = config.header_timeout_s
        self.max_connections = config.max_connections
        self.open: set[_Guarded] = set()
        self.bound_port = config.port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            lambda: _Guarded(server(), self), self._host, self._port)
        if self._server.sockets:
            self.bound_port = self._server.sockets[0].getsockname()[1]
