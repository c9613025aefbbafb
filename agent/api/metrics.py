"""Prometheus metrics of the agent, updated by the call supervisor, served on ``/metrics``.

Every name carries the ``ema_`` prefix (early-media agent):

``ema_calls_total{carrier, outcome}``
    Calls that ended, by carrier and outcome (one of :data:`OUTCOMES`). ASR of a carrier
    is ``answered`` over all outcomes.
``ema_inferred_total{sip_code, source}``
    Failure codes the agent inferred, by code and by what decided it (classifier, tone,
    fingerprint); counted when the call is over, so an answered call is never in it.
``ema_classified_seconds_total{label}``
    Seconds of early media classified, by class.
``ema_decision_lag_seconds``
    Histogram of the time from the start of early media to the inferred code.
``ema_active_calls``
    Calls in progress through the agent.
``ema_analysis_failures_total``
    Calls whose early media could not be analysed (decoder, model or library errors).
``ema_carrier_final_total{code}``
    Final response codes the carrier really sent.
``ema_fas_suspected_total{carrier}``
    Answered calls whose audio after the 200 OK still sounded unanswered (ringback, an
    announcement, a library match): false answer supervision (``fas.seconds`` > 0).
``ema_webhook_deliveries_total{event, result}``
    Webhook events (``decision``, ``final``) by result: ``delivered``, ``failed`` (given
    up after ``webhooks.max_attempts``, or refused by the receiver with a 4xx) or
    ``dropped`` (the queue was full).
``ema_webhook_retries_total{event}``
    Webhook attempts after an event's first one.
``ema_webhook_queue_depth``
    Webhook events waiting for a sender.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from agent.labels import LABELS
from agent.webhooks.config import EVENTS as WEBHOOK_EVENTS

OUTCOMES: tuple[str, ...] = ("answered", "failed", "cancelled", "error")
SOURCES: tuple[str, ...] = ("classifier", "tone", "fingerprint")
#: Decisions are expected within a few seconds of 183; the buckets resolve the 1.5 s target.
LAG_BUCKETS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 30.0)
WEBHOOK_RESULTS: tuple[str, ...] = ("delivered", "failed", "dropped")


class AgentMetrics:
    """The agent's metric families, registered in one registry.

    Parameters
    ----------
    registry : CollectorRegistry or None
        Where to register; None is prometheus_client's default registry, the one
        :func:`agent.api.app.create_app` serves by default. Tests pass their own.

    Notes
    -----
    Label values are checked against the fixed sets (outcomes, sources, labels) so a
    bug cannot blow up the number of series.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.calls = Counter(
            "ema_calls", "Calls that ended, by carrier and outcome.",
            ["carrier", "outcome"], registry=reg,
        )
        self.inferred = Counter(
            "ema_inferred", "Failure codes inferred from early media, by code and source.",
            ["sip_code", "source"], registry=reg,
        )
        self.classified_seconds = Counter(
            "ema_classified_seconds", "Seconds of early media classified, by class.",
            ["label"], registry=reg,
        )
        self.decision_lag = Histogram(
            "ema_decision_lag_seconds",
            "Time from the start of early media to the inferred code.",
            buckets=LAG_BUCKETS, registry=reg,
        )
        self.active_calls = Gauge(
            "ema_active_calls", "Calls in progress through the agent.", registry=reg
        )
        self.analysis_failures = Counter(
            "ema_analysis_failures", "Calls whose early media could not be analysed.",
            registry=reg,
        )
        self.carrier_final = Counter(
            "ema_carrier_final", "Final response codes the carrier sent.", ["code"], registry=reg
        )
        self.fas = Counter(
            "ema_fas_suspected", "Answered calls suspected of false answer supervision.",
            ["carrier"], registry=reg,
        )
        self.webhook_deliveries = Counter(
            "ema_webhook_deliveries", "Webhook events by event and result.",
            ["event", "result"], registry=reg,
        )
        self.webhook_retries = Counter(
            "ema_webhook_retries", "Webhook attempts after an event's first.", ["event"],
            registry=reg,
        )
        self.webhook_queue_depth = Gauge(
            "ema_webhook_queue_depth", "Webhook events waiting for a sender.", registry=reg
        )
        # Every series exists from the start, so a rate() over it is 0, not absent.
        for event in WEBHOOK_EVENTS:
            self.webhook_retries.labels(event=event)
            for result in WEBHOOK_RESULTS:
                self.webhook_deliveries.labels(event=event, result=result)

    def call_started(self) -> None:
        """A call entered the agent."""
        self.active_calls.inc()

    def call_ended(self, *, carrier: str | None, outcome: str) -> None:
        """A call left the agent with ``outcome`` (one of :data:`OUTCOMES`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        self.active_calls.dec()
        self.calls.labels(carrier=carrier or "unknown", outcome=outcome).inc()

    def second_classified(self, label: str) -> None:
        """The classifier labelled one second of audio."""
        if label not in LABELS:
            raise ValueError(f"label: expected one of {', '.join(LABELS)}, got {label!r}")
        self.classified_seconds.labels(label=label).inc()

    def code_inferred(self, *, sip_code: int, source: str, lag_s: float) -> None:
        """The decision engine inferred ``sip_code`` ``lag_s`` seconds into early media."""
        if source not in SOURCES:
            raise ValueError(f"source: expected one of {', '.join(SOURCES)}, got {source!r}")
        self.inferred.labels(sip_code=str(sip_code), source=source).inc()
        self.decision_lag.observe(lag_s)

    def analysis_failed(self) -> None:
        """Analysis of a call's early media raised an error."""
        self.analysis_failures.inc()

    def carrier_final_code(self, code: int) -> None:
        """The carrier sent final response ``code``."""
        self.carrier_final.labels(code=str(code)).inc()

    def fas_suspected(self, *, carrier: str | None) -> None:
        """An answered call's audio after the answer said it was not answered."""
        self.fas.labels(carrier=carrier or "unknown").inc()

    def webhook_result(self, *, event: str, result: str) -> None:
        """A webhook event was delivered, given up or dropped (one of :data:`WEBHOOK_RESULTS`)."""
        if event not in WEBHOOK_EVENTS:
            raise ValueError(f"event: expected one of {', '.join(WEBHOOK_EVENTS)}, got {event!r}")
        if result not in WEBHOOK_RESULTS:
            raise ValueError(f"result: expected one of {', '.join(WEBHOOK_RESULTS)}, "
                             f"got {result!r}")
        self.webhook_deliveries.labels(event=event, result=result).inc()

    def webhook_retry(self, *, event: str) -> None:
        """A webhook event is attempted again after a failed attempt."""
        if event not in WEBHOOK_EVENTS:
            raise ValueError(f"event: expected one of {', '.join(WEBHOOK_EVENTS)}, got {event!r}")
        self.webhook_retries.labels(event=event).inc()

    def webhook_queued(self, depth: int) -> None:
        """``depth`` webhook events wait for a sender now."""
        self.webhook_queue_depth.set(depth)
