"""``early-media-agent run``'s process: the call store, metrics, HTTP API, webhooks and the
supervisor of :mod:`agent.sip.supervisor`, wired together on one event loop."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import structlog

from agent.errors import ConfigError
from agent.sip.supervisor import Supervisor

log = structlog.get_logger("agent.sip.supervisor")


async def serve(config: Any, config_path: str) -> None:
    """Run the agent (supervisor, workers, analysis, API, webhooks) until SIGINT or SIGTERM.

    ``config`` is an :class:`agent.settings.AgentConfig`.
    """
    from agent.api.app import CallNotifier, create_app, start
    from agent.api.metrics import AgentMetrics, routes_of
    from agent.store.calls import CallStore
    from agent.webhooks.delivery import WebhookSink

    store = CallStore(config.store.calls_location())
    metrics = AgentMetrics(routes=routes_of(config.sip))
    notifier = CallNotifier()
    sink = (WebhookSink(config.webhooks, store=store, metrics=metrics)
            if config.webhooks.enabled else None)
    sup = Supervisor(config, config_path, store=store, metrics=metrics, notifier=notifier,
                     sink=sink)
    library = None
    if config.fingerprint.enabled:
        from agent.api.dashboard import LibraryAccess
        from agent.fingerprint.library import default_location

        library = LibraryAccess(config.fingerprint.library or default_location(),
                                config=config.fingerprint)
    metrics.watch_health(sup.health)
    app = create_app(store, config=config.api, notifier=notifier, health=sup.health,
                     library=library)
    try:
        runner = await start(app, config.api)
    except OSError as exc:
        store.close()
        raise ConfigError(f"api.port: {config.api.host}:{config.api.port}/tcp is not free "
                          f"({exc.strerror})") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if sink is not None:
            await sink.start()
        await sup.start()
        log.info("api_ready", host=config.api.host, port=config.api.port, pid=os.getpid())
        await stop.wait()
    finally:
        await sup.stop()
        if sink is not None:
            await sink.stop()
        await runner.cleanup()
        store.close()
        log.info("agent_stopped")
