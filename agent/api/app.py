"""The dialer's HTTP API: inferred codes per call, ASR statistics, metrics and a dashboard.

Routes (documented in ``agent/api/openapi.yaml``)::

    GET /v1/calls/{id}[?wait=S]   one call by Call-ID or X-Correlation-ID; long-polls
    GET /v1/calls[?since&limit]   recent calls, newest first
    GET /v1/calls/export[?since&format=csv|jsonl]   every call since, oldest first, streamed
    GET /v1/stats/asr?by=carrier|route[&since]
    GET /healthz  /metrics  /openapi.yaml
    GET /dashboard[/honesty|/calls/{id}|/review]   HTML pages (agent.api.dashboard)
    POST /dashboard/review/{entry}/{label|edit|unlabel|remove}   the review queue's forms

Errors are JSON ``{"error": "<one line>"}``: 400 names the bad parameter, 404 an unknown
call or path, 500 never carries a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from agent import __version__
from agent.api import dashboard
from agent.api.config import ApiConfig
from agent.api.dashboard import LibraryAccess
from agent.errors import UserError
from agent.store import export
from agent.store.calls import GROUP_BY, CallRecord, CallStoreBackend
from agent.store.export import parse_since

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
#: How often the retention task prunes the store.
PRUNE_EVERY_S = 3600.0

log = structlog.get_logger(__name__)


class CallNotifier:
    """Wakes long polls waiting on a call as soon as the supervisor records a decision.

    :meth:`notify` may be called from any thread (pjsua2 callbacks, worker threads);
    it hands the wake-up to the event loop the app runs on. Before the app starts, or
    after it stops, notifications are dropped: the long poll also re-reads the store.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Attach to the loop that serves the API (done by the app on startup)."""
        self._loop = loop

    def notify(self, call_id: str) -> None:
        """Something about ``call_id`` changed in the store; wake whoever waits on it."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake(call_id)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(self._wake, call_id)

    def _wake(self, call_id: str) -> None:
        for event in self._waiters.get(call_id, ()):
            event.set()

    def watching(self) -> int:
        """How many long polls are waiting now."""
        return sum(len(w) for w in self._waiters.values())

    @contextlib.contextmanager
    def watch(self, call_id: str) -> Iterator[asyncio.Event]:
        """An event set by the next :meth:`notify` of ``call_id`` while in the block."""
        event = asyncio.Event()
        self._waiters.setdefault(call_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters[call_id]
            waiters.discard(event)
            if not waiters:
                del self._waiters[call_id]


STORE = web.AppKey("store", CallStoreBackend)
CONFIG = web.AppKey("config", ApiConfig)
NOTIFIER = web.AppKey("notifier", CallNotifier)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
#: A callable listing what is wrong with the agent ([] when healthy), or None.
HEALTH = web.AppKey("health", object)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure becomes one line of JSON; tracebacks go to the log only."""
    try:
        return await handler(request)
    except UserError as exc:
        return _json_error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return _json_error(404, f"no such path {request.path!r}")
        return _json_error(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("api.request_failed", path=request.path)
        return _json_error(500, "internal error")


def parse_wait(raw: str | None, *, max_wait_s: float) -> float:
    """Seconds to long-poll from ``?wait=``; absent is 0."""
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise UserError(f"wait: expected a number of seconds, got {raw!r}") from None
    if not math.isfinite(wait) or wait < 0:
        raise UserError(f"wait: expected 0..{max_wait_s:g} seconds, got {raw!r}")
    if wait > max_wait_s:
        raise UserError(f"wait: at most {max_wait_s:g} seconds, got {raw!r}")
    return wait


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    """The number of calls from ``?limit=``, 1..``maximum``."""
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise UserError(f"limit: expected an integer 1..{maximum}, got {raw!r}") from None
    if not 1 <= limit <= maximum:
        raise UserError(f"limit: expected an integer 1..{maximum}, got {raw!r}")
    return limit


def parse_by(raw: str | None) -> str:
    """The grouping of ``?by=``: carrier or route."""
    if raw not in GROUP_BY:
        raise UserError(f"by: expected one of {', '.join(GROUP_BY)}, got {raw!r}")
    return raw


def _window_start(request: web.Request) -> datetime:
    cfg = request.app[CONFIG]
    default = datetime.now(UTC) - timedelta(seconds=cfg.default_window_s)
    return parse_since(request.query.get("since"), default=default)


async def _wait_for_call(
    store: CallStoreBackend,
    notifier: CallNotifier,
    id: str,
    *,
    wait: float,
    poll: float,
    gone: Callable[[], bool],
) -> CallRecord | None:
    """Read call ``id``, then until ``wait`` runs out, re-read it on every notification or
    every ``poll`` seconds until it is settled. An id not yet stored is waited for too,
    since a dialer may ask before the INVITE has reached the agent. Stops early once
    ``gone()`` says the client hung up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    key = id
    while True:
        # Subscribe before reading so a notification between the read and the wait is kept.
        with notifier.watch(key) as event:
            record = store.get(id)
            remaining = deadline - loop.time()
            if (record is not None and record.settled) or remaining <= 0 or gone():
                return record
            if record is not None and record.call_id != key:
                key = record.call_id  # asked by correlation id: notifications name the Call-ID
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(poll, remaining))


async def get_call(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    wait = parse_wait(request.query.get("wait"), max_wait_s=cfg.max_wait_s)
    id = request.match_info["id"]

    def gone() -> bool:
        return request.transport is None or request.transport.is_closing()

    record = await _wait_for_call(
        request.app[STORE], request.app[NOTIFIER], id,
        wait=wait, poll=cfg.poll_interval_s, gone=gone,
    )
    if record is None:
        return _json_error(404, f"call {id!r} not found")
    return web.json_response(record.as_json())


async def list_calls(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    since = _window_start(request)
    limit = parse_limit(
        request.query.get("limit"), default=cfg.list_limit_default, maximum=cfg.list_limit_max
    )
    calls = request.app[STORE].list_since(since, limit=limit)
    return web.json_response({"calls": [c.as_json() for c in calls]})


async def export_calls(request: web.Request) -> web.StreamResponse:
    """Every call started since ``?since=``, oldest first, as CSV or JSON Lines, streamed:
    pages are read from the store in a thread so the event loop keeps serving calls."""
    since = _window_start(request)
    fmt = export.parse_format(request.query.get("format"))
    stamp = since.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    resp = web.StreamResponse(headers={
        "Content-Type": export.CONTENT_TYPES[fmt],
        "Content-Disposition": f'attachment; filename="calls-since-{stamp}.{fmt}"'})
    await resp.prepare(request)
    chunks = export.export(request.app[STORE].iter_since(since), fmt)
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await resp.write(chunk.encode())
    except ConnectionResetError:
        return resp  # the client left
    except Exception:
        # The status is sent: cut the stream so the client cannot take it as complete.
        log.exception("api.export_failed", path=request.path)
        if request.transport is not None:
            request.transport.close()
        return resp
    await resp.write_eof()
    return resp


async def asr_stats(request: web.Request) -> web.Response:
    by = parse_by(request.query.get("by"))
    since = _window_start(request)
    rows = request.app[STORE].asr(by, since)
    return web.json_response(
        {
            "by": by,
            "since": since.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "rows": [r.as_json() for r in rows],
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """200 ``{"ok": true}``, or 503 with ``problems`` (children down, crash loops)."""
    health = request.app[HEALTH]
    problems = health() if callable(health) else []
    if problems:
        return web.json_response({"ok": False, "version": __version__, "problems": problems},
                                 status=503)
    return web.json_response({"ok": True, "version": __version__})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI_PATH, headers={"Content-Type": "application/yaml"})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Bind the notifier to the serving loop and run the retention task while serving."""
    app[NOTIFIER].bind(asyncio.get_running_loop())
    task = None
    if app[CONFIG].retention_days > 0:
        task = asyncio.create_task(_prune_forever(app[STORE], app[CONFIG].retention_days))
    yield
    app[NOTIFIER].bind(None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _prune_forever(store: CallStoreBackend, retention_days: float) -> None:
    """Drop calls older than the retention, now and then every :data:`PRUNE_EVERY_S`."""
    while True:
        cutoff = datetime.now(UTC) - timedelta(days=retention_days)
        try:
            n = await asyncio.to_thread(store.prune, cutoff)
            log.info("api.pruned", calls=n, older_than=cutoff.isoformat())
        except Exception:
            log.exception("api.prune_failed")
        await asyncio.sleep(PRUNE_EVERY_S)


def create_app(
    store: CallStoreBackend,
    *,
    config: ApiConfig | None = None,
    registry: CollectorRegistry | None = None,
    notifier: CallNotifier | None = None,
    health: Callable[[], list[str]] | None = None,
    library: LibraryAccess | None = None,
) -> web.Application:
    """Build the API application over ``store``.

    Parameters
    ----------
    store : CallStoreBackend
        Where calls are read from (and pruned, per ``config.retention_days``).
    config : ApiConfig or None
        Listen address and request bounds; None is the defaults.
    registry : CollectorRegistry or None
        Served on ``/metrics``; None is prometheus_client's default registry, where
        :class:`agent.api.metrics.AgentMetrics` registers by default.
    notifier : CallNotifier or None
        Shared with the supervisor, which calls ``notifier.notify(call_id)`` after writing
        a decision; a new one is made if None. It is ``app[NOTIFIER]`` either way.
    health : callable or None
        Lists what is wrong with the agent ([] when healthy) for ``/healthz``.
    library : LibraryAccess or None
        The announcement library the dashboard's review queue labels into; None when
        the agent runs without one.

    Returns
    -------
    aiohttp.web.Application
    """
    from agent.api.guard import bearer_middleware

    cfg = config or ApiConfig()
    middlewares = [_errors] + ([bearer_middleware(cfg.token)] if cfg.token else [])
    app = web.Application(middlewares=middlewares)
    app[STORE] = store
    app[CONFIG] = config if config is not None else ApiConfig()
    app[NOTIFIER] = notifier if notifier is not None else CallNotifier()
    app[HEALTH] = health
    app[REGISTRY_KEY] = registry if registry is not None else REGISTRY
    app.router.add_get("/v1/calls/export", export_calls)  # before {id}, which would take it
    app.router.add_get("/v1/calls/{id:.+}", get_call)  # a Call-ID may hold "/"
    app.router.add_get("/v1/calls", list_calls)
    app.router.add_get("/v1/stats/asr", asr_stats)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.yaml", openapi)
    dashboard.register(app, store=store, config=app[CONFIG], library=library)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def start(app: web.Application, config: ApiConfig) -> web.AppRunner:
    """Serve ``app`` on ``config.host:config.port`` inside the running loop.

    Returns the runner; ``await runner.cleanup()`` stops it. With port 0 the bound port
    is ``runner.addresses[0][1]``.
    """
    from agent.api.guard import GuardedSite

    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.keepalive_s)
    await runner.setup()
    await GuardedSite(runner, config).start()
    return runner
