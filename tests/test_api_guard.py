"""The API's guard: a bearer token beyond loopback, slow and surplus connections closed."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from agent.api.app import create_app, start
from agent.api.config import ApiConfig
from agent.config import build
from agent.errors import ConfigError
from agent.store.calls import CallStore

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def store(tmp_path):
    s = CallStore(tmp_path / "calls.sqlite")
    yield s
    s.close()


def _serve(store, **kw):
    config = ApiConfig(port=0, retention_days=0, **kw)
    return config, create_app(store, config=config, registry=CollectorRegistry(),
                              health=lambda: [])


def test_a_token_is_required_beyond_loopback_and_optional_on_it():
    with pytest.raises(ConfigError, match="token: required when host \\(0.0.0.0\\)"):
        build(ApiConfig, {"host": "0.0.0.0"}, "api")
    assert build(ApiConfig, {"host": "0.0.0.0", "token": TOKEN}, "api").token == TOKEN
    assert build(ApiConfig, {"host": "::1"}, "api").token == ""
    with pytest.raises(ConfigError, match="at least 16"):
        build(ApiConfig, {"token": "short"}, "api")


def test_requests_without_the_token_get_401_and_health_stays_open(store):
    async def scenario() -> None:
        config, app = _serve(store, token=TOKEN)
        runner = await start(app, config)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/v1/calls") as r:
                    assert r.status == 401 and "bearer" in (await r.json())["error"]
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
                bad = {"Authorization": "Bearer wrong"}
                async with session.get(f"{base}/v1/calls", headers=bad) as r:
                    assert r.status == 401
                good = {"Authorization": f"Bearer {TOKEN}"}
                async with session.get(f"{base}/v1/calls", headers=good) as r:
                    assert r.status == 200
                async with session.get(f"{base}/metrics?access_token={TOKEN}") as r:
                    assert r.status == 200
                async with session.get(f"{base}/healthz") as r:
                    assert r.status == 200
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_connections_that_never_finish_their_headers_are_closed(store):
    async def scenario() -> None:
        config, app = _serve(store, header_timeout_s=0.5)
        runner = await start(app, config)
        port = runner.addresses[0][1]
        try:
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(10)]
            trickle = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.monotonic()
            closed_while_trickling = False
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 60:
                try:
                    trickle[1].write(bytes([byte]))
                    await trickle[1].drain()
                except ConnectionError:
                    closed_while_trickling = True
                    break
                await asyncio.sleep(0.02)
            assert closed_while_trickling
            for reader, _ in idle:
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            assert time.monotonic() - t0 < 5
            # A prompt client on a kept-alive connection is served twice.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(2):
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                await asyncio.sleep(0.7)  # longer than the header timeout, between requests
            writer.close()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_connections_beyond_the_limit_are_refused(store):
    async def scenario() -> None:
        config, app = _serve(store, max_connections=3, header_timeout_s=30)
        runner = await start(app, config)
        port = runner.addresses[0][1]
        try:
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                got = await asyncio.wait_for(reader.read(), 5)
            except ConnectionResetError:
                got = b""
            assert got == b""
            for _, w in held:
                w.close()
            await asyncio.sleep(0.2)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert r.status == 200
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
