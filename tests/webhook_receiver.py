"""A real webhook receiver for the tests: an aiohttp server on a loopback port that keeps
every POST and checks its signature with :mod:`hmac` directly (not with the agent's own
code). It can answer given statuses first, hold requests until released, or never answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


def signed_by(secret: bytes, header: str | None, body: bytes, *, skew_s: float = 60) -> bool:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>``, signed within ``skew_s`` of now."""
    m = re.fullmatch(r"t=([0-9]+),v1=([0-9a-f]{64})", header or "")
    if m is None or abs(time.time() - int(m[1])) > skew_s:
        return False
    digest = hmac.new(secret, m[1].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest, m[2])


@dataclass(frozen=True)
class Delivery:
    """One POST as the receiver got it."""

    headers: dict[str, str]
    body: bytes
    signed: bool
    status: int | None  # what it answered; None while held or never answered
    arrived: float  # epoch seconds

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records webhook POSTs on ``url``.

    ``statuses`` are answered to the first requests in order, then 200. With ``hang`` set
    a request is never answered (until :meth:`stop`); with ``hold`` set requests wait
    until :meth:`release`.
    """

    def __init__(self, secret: bytes, *, statuses: tuple[int, ...] = (),
                 hang: bool = False, hold: bool = False) -> None:
        self.secret = secret
        self.statuses = list(statuses)
        self.hang = hang
        self.hold = hold
        self.deliveries: list[Delivery] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._stopped: asyncio.Event | None = None
        self._released: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = signed_by(self.secret, request.headers.get("X-EMA-Signature"), body)
        index = len(self.deliveries)
        arrived = time.time()
        self.deliveries.append(Delivery(dict(request.headers), body, signed, None, arrived))
        assert self._stopped is not None and self._released is not None
        if self.hang:
            await self._stopped.wait()
            return web.Response(status=503)
        if self.hold:
            await self._released.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        self.deliveries[index] = Delivery(dict(request.headers), body, signed, status, arrived)
        return web.Response(status=status)

    async def start(self, *, port: int = 0) -> Receiver:
        """Listen on ``port`` of 127.0.0.1 (0: a free one)."""
        self._loop = asyncio.get_running_loop()
        self._stopped, self._released = asyncio.Event(), asyncio.Event()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    def release(self) -> None:
        """Let held requests be answered (callable from any thread)."""
        assert self._loop is not None and self._released is not None
        self._loop.call_soon_threadsafe(self._released.set)

    async def stop(self) -> None:
        assert self._stopped is not None and self._runner is not None
        self._stopped.set()
        await self._runner.cleanup()

    async def wait_for(self, n: int, *, timeout_s: float = 10.0) -> list[Delivery]:
        """The first ``n`` deliveries, once answered (or once arrived, if held or hung)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.deliveries[:n]
            if len(got) == n and all(d.status is not None or self.hang or self.hold
                                     for d in got):
                return got
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.deliveries)} deliveries, expected {n}")

    # --- from a synchronous test: the server runs on its own loop in a thread ---------

    def start_in_thread(self) -> Receiver:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert started.wait(10), "receiver did not start"
        return self

    def stop_thread(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_sync(self, predicate: Any, *, timeout_s: float = 30.0) -> list[Delivery]:
        """Poll until ``predicate(deliveries)`` is true; the deliveries then."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = list(self.deliveries)
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"condition not met; deliveries: {[d.json for d in got]}")
