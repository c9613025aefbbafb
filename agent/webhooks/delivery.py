"""The webhook sender: snapshot, queue, sign, POST, retry; counted in the metrics.

The supervisor calls :meth:`WebhookSink.publish` from its event loop after it wrote a
decision or closed a call. ``publish`` reads the call's record from the store (the same
``Call`` object the API returns), wraps it in an event and puts it in a bounded queue;
it never waits and never raises. ``concurrency`` sender tasks on the same loop take events
from the queue and POST them with one aiohttp session.

Body (UTF-8 JSON, identical on every attempt)::

    {"id": "<32 hex>", "event": "decision" | "final", "at": "<ISO 8601 UTC>",
     "call": {...the API's Call object...}}

Headers: ``X-EMA-Event``, ``X-EMA-Delivery`` (the id) and ``X-EMA-Signature``
(:mod:`agent.webhooks.signature`, signed afresh for each attempt). A 2xx is delivered; a
timeout, a connection error, 408, 429 or 5xx is tried again after ``backoff_s``, doubling
up to ``backoff_max_s``, at most ``max_attempts`` times; any other answer is a failure
at once (the receiver refused the event, a retry would not change its mind).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from agent import __version__
from agent.webhooks.config import WebhookConfig
from agent.webhooks.queue import DropQueue
from agent.webhooks.signature import HEADER, sign

log = structlog.get_logger("agent.webhooks")

#: Answers worth another attempt: the receiver is busy or broken, not refusing the event.
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Event:
    """One event to deliver: its id, kind, call and the body every attempt sends."""

    id: str
    event: str
    call_id: str
    body: bytes


def make_event(event: str, call: dict[str, Any], *, at: datetime | None = None) -> Event:
    """Wrap a call record (``CallRecord.as_json()``) as a webhook event."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    id = uuid.uuid4().hex
    body = {"id": id, "event": event,
            "at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "call": call}
    return Event(id=id, event=event, call_id=str(call["call_id"]),
                 body=json.dumps(body, separators=(",", ":")).encode())


def backoff(config: WebhookConfig, retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1 is the second attempt)."""
    return float(min(config.backoff_s * 2 ** (retry - 1), config.backoff_max_s))


class WebhookSink:
    """Pushes decisions and final records of calls in ``store`` to ``config.url``.

    Parameters
    ----------
    config : WebhookConfig
        Validated ``webhooks`` section; its secret is read from the environment now.
    store : CallStoreBackend
        Where :meth:`publish` reads the record it sends.
    metrics : AgentMetrics
        Counts deliveries, failures, retries, drops and the queue depth.
    """

    def __init__(self, config: WebhookConfig, *, store: Any, metrics: Any) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self._secret = config.secret()
        self._queue: DropQueue[Event] = DropQueue(
            config.queue_size, drop_oldest=config.when_full == "drop_oldest")
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        #: The verdict last pushed per live call, so a confirmed verdict is not pushed twice.
        self._verdicts: dict[str, tuple[Any, ...]] = {}

    # --- the supervisor's side --------------------------------------------------------

    def publish(self, event: str, call_id: str) -> None:
        """Queue ``event`` (``decision`` or ``final``) for ``call_id``'s current record.

        A ``decision`` whose verdict (code, reason, cause, source) was already pushed for
        the call is skipped. Never waits, never raises: a failure here is logged and the
        call goes on.
        """
        try:
            self._publish(event, call_id)
        except Exception:
            log.exception("webhook.publish_failed", call_id=call_id, kind=event)

    def _publish(self, event: str, call_id: str) -> None:
        if event == "final":
            self._verdicts.pop(call_id, None)
        if event not in self.config.events:
            return
        record = self.store.get(call_id)
        if record is None or record.call_id != call_id:
            return
        call = record.as_json()
        if event == "decision":
            inferred = call["inferred"]
            if inferred is None:
                return
            verdict = (inferred["sip_code"], inferred["reason"], inferred["q850_cause"],
                       inferred["source"])
            if self._verdicts.get(call_id) == verdict:
                return
            self._verdicts[call_id] = verdict
        self.submit(make_event(event, call))

    def submit(self, item: Event) -> None:
        """Queue an event; when the queue is full one is dropped and counted."""
        dropped = self._queue.put(item)
        if dropped is not None:
            self.metrics.webhook_result(event=dropped.event, result="dropped")
            log.warning("webhook.dropped", call_id=dropped.call_id, kind=dropped.event,
                        id=dropped.id, queue_size=self.config.queue_size)
        self.metrics.webhook_queued(len(self._queue))

    # --- the senders ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start the sender tasks on the running loop."""
        connector = aiohttp.TCPConnector(limit=self.config.concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": f"early-media-agent/{__version__}"})
        self._tasks = [asyncio.create_task(self._sender(), name=f"webhook-sender-{i}")
                       for i in range(self.config.concurrency)]
        log.info("webhook.started", url=self.config.url, events=self.config.events)

    async def stop(self, *, grace_s: float = 2.0) -> None:
        """Give queued and in-flight events ``grace_s`` to go out, then stop sending."""
        deadline = time.monotonic() + grace_s
        while (len(self._queue) or self._in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = len(self._queue) + self._in_flight
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        if left:
            log.warning("webhook.abandoned_at_stop", events=left)

    async def _sender(self) -> None:
        while True:
            item = await self._queue.get()
            self.metrics.webhook_queued(len(self._queue))
            self._in_flight += 1
            try:
                await self._deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook.sender_failed", call_id=item.call_id, id=item.id)
                self.metrics.webhook_result(event=item.event, result="failed")
            finally:
                self._in_flight -= 1

    async def _deliver(self, item: Event) -> None:
        """Attempt ``item`` until delivered, refused, or out of attempts."""
        for attempt in range(1, self.config.max_attempts + 1):
            if attempt > 1:
                self.metrics.webhook_retry(event=item.event)
                await asyncio.sleep(backoff(self.config, attempt - 1))
            outcome, detail = await self._attempt(item)
            if outcome == "delivered":
                self.metrics.webhook_result(event=item.event, result="delivered")
                return
            log.warning("webhook.attempt_failed", call_id=item.call_id, kind=item.event,
                        id=item.id, attempt=attempt, error=detail)
            if outcome == "refused":
                break
        self.metrics.webhook_result(event=item.event, result="failed")
        log.error("webhook.failed", call_id=item.call_id, kind=item.event, id=item.id)

    async def _attempt(self, item: Event) -> tuple[str, str]:
        """One POST: ``delivered``, ``retry`` or ``refused``, with what went wrong."""
        assert self._session is not None, "start() first"
        headers = {"Content-Type": "application/json", "X-EMA-Event": item.event,
                   "X-EMA-Delivery": item.id,
                   HEADER: sign(self._secret, int(time.time()), item.body)}
        try:
            async with self._session.post(
                    self.config.url, data=item.body, headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.config.timeout_s)) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            return "retry", f"no answer within {self.config.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return "retry", f"{type(exc).__name__}: {exc}"
        if 200 <= status < 300:
            return "delivered", ""
        if status in RETRY_STATUSES or status >= 500:
            return "retry", f"HTTP {status}"
        return "refused", f"HTTP {status}"
