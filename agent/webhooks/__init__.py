"""Push delivery: each decision and each final call record POSTed to a configured URL.

The supervisor process holds the call records, so it pushes them:
:class:`~agent.webhooks.delivery.WebhookSink` snapshots the record when the supervisor
reports a decision or a call's end, queues it in memory (bounded, :mod:`.queue`) and sends
it from asyncio tasks, signed (:mod:`.signature`) and retried with exponential backoff.
Nothing in it waits on the receiver where a call or the store could notice.
"""

from agent.webhooks.config import EVENTS, WebhookConfig

__all__ = ["EVENTS", "WebhookConfig"]
