"""Prometheus metrics of the agent, updated by the call supervisor, served on ``/metrics``.

Every name carries the ``ema_`` prefix (early-media agent):

``ema_calls_total{carrier, route, outcome}``
    Calls that ended, by carrier, route and outcome (one of :data:`OUTCOMES`). ASR of a
    carrier or route is ``answered`` over all outcomes.
``ema_inferred_total{sip_code, source, carrier}``
    Failure codes the agent inferred, by code, by what decided it (classifier, tone,
    fingerprint) and by carrier; counted when the call is over, so an answered call is
    never in it.
``ema_code_judged_total{carrier}``
    Failed calls (carrier final code 300 or above) with an inferred code: the calls the
    agent can judge the carrier on, as ``judged`` in :mod:`agent.store.queries`.
``ema_code_differs_total{carrier}``
    Judged calls whose inferred code is not the carrier's final code. The carrier's
    honesty share is ``differs`` over ``judged``, as on the dashboard.
``ema_differing_codes_total{carrier, sent_code, inferred_code}``
    The same calls by the code the carrier sent and the one the agent inferred (the
    dashboard's top pairs); only pairs seen exist.
``ema_classified_seconds_total{label}``
    Seconds of early media classified, by class.
``ema_decision_lag_seconds``
    Histogram of the time from the start of early media to the inferred code.
``ema_active_calls``
    Calls in progress through the agent.
``ema_analysis_failures_total``
    Calls whose early media could not be analysed (decoder, model or library errors).
``ema_carrier_final_total{code, carrier}``
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
``ema_child_restarts_total{kind}``
    Worker and analysis processes (``kind`` ``worker`` or ``analyst``) restarted after
    they died.
``ema_health_ok``
    1 when ``/healthz`` would answer 200, else 0; ``ema_health_problems`` counts what it
    would list (children down or crash-looping, Kamailio down). Both are read from the
    supervisor at each scrape.

Carrier and route values are the names in the route table (:mod:`agent.sip.routes`),
``unknown`` for anything else, so the number of series stays bounded whatever the dialled
numbers; codes are SIP status codes (100..699) or ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from agent.labels import LABELS
from agent.sip.routes import routes
from agent.webhooks.config import EVENTS as WEBHOOK_EVENTS

if TYPE_CHECKING:
    from agent.sip.config import SipConfig

OUTCOMES: tuple[str, ...] = ("answered", "failed", "cancelled", "error")
SOURCES: tuple[str, ...] = ("classifier", "tone", "fingerprint")
#: Decisions are expected within a few seconds of 183; the buckets resolve the 1.5 s target.
LAG_BUCKETS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 30.0)
WEBHOOK_RESULTS: tuple[str, ...] = ("delivered", "failed", "dropped")
CHILD_KINDS: tuple[str, ...] = ("worker", "analyst")
UNKNOWN = "unknown"
#: A carrier or route name as agent.sip.routes allows it: never a URI (no ':' or '@').
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class AgentMetrics:
    """The agent's metric families, registered in one registry.

    Parameters
    ----------
    registry : CollectorRegistry or None
        Where to register; None is prometheus_client's default registry, the one
        :func:`agent.api.app.create_app` serves by default. Tests pass their own.
    routes : mapping of str to str
        The route table, route name → carrier name (:func:`routes_of`). When given, only
        these names are label values (anything else is ``unknown``) and every per-route
        and per-carrier series exists from the start; when empty, any name that looks
        like one is taken.

    Notes
    -----
    Label values are checked against the fixed sets (outcomes, sources, labels) so a
    bug cannot blow up the number of series.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 routes: Mapping[str, str] | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        self.registry = reg
        self.routes = dict(routes or {})
        self.route_names = set(self.routes)
        self.carriers = set(self.routes.values())
        self.calls = Counter(
            "ema_calls", "Calls that ended, by carrier, route and outcome.",
            ["carrier", "route", "outcome"], registry=reg,
        )
        self.inferred = Counter(
            "ema_inferred", "Failure codes inferred from early media, by code, source, carrier.",
            ["sip_code", "source", "carrier"], registry=reg,
        )
        self.judged = Counter(
            "ema_code_judged", "Failed calls with an inferred code, by carrier.",
            ["carrier"], registry=reg,
        )
        self.differs = Counter(
            "ema_code_differs", "Judged calls whose inferred code is not the carrier's.",
            ["carrier"], registry=reg,
        )
        self.differing_codes = Counter(
            "ema_differing_codes", "Differing judged calls by the code sent and inferred.",
            ["carrier", "sent_code", "inferred_code"], registry=reg,
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
            "ema_carrier_final", "Final response codes the carrier sent.", ["code", "carrier"],
            registry=reg,
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
        self.child_restarts = Counter(
            "ema_child_restarts", "Worker and analysis processes restarted after dying.",
            ["kind"], registry=reg,
        )
        self.health_ok = Gauge(
            "ema_health_ok", "1 when /healthz answers 200, else 0.", registry=reg
        )
        self.health_problems = Gauge(
            "ema_health_problems", "Problems /healthz lists.", registry=reg
        )
        self.health_ok.set(1)
        # Every series exists from the start, so a rate() over it is 0, not absent.
        for event in WEBHOOK_EVENTS:
            self.webhook_retries.labels(event=event)
            for result in WEBHOOK_RESULTS:
                self.webhook_deliveries.labels(event=event, result=result)
        for kind in CHILD_KINDS:
            self.child_restarts.labels(kind=kind)
        for route, carrier in self.routes.items():
            for outcome in OUTCOMES:
                self.calls.labels(carrier=carrier, route=route, outcome=outcome)
        for carrier in self.carriers:
            self.judged.labels(carrier=carrier)
            self.differs.labels(carrier=carrier)
            self.fas.labels(carrier=carrier)

    def _carrier(self, name: str | None) -> str:
        return _bounded(name, self.carriers)

    def _route(self, name: str | None) -> str:
        return _bounded(name, self.route_names)

    def watch_health(self, health: Callable[[], list[str]]) -> None:
        """Read ``health`` (what /healthz lists, [] when healthy) at every scrape."""
        self.health_ok.set_function(lambda: 0.0 if health() else 1.0)
        self.health_problems.set_function(lambda: float(len(health())))

    def child_restarted(self, kind: str) -> None:
        """A dead child process of ``kind`` (one of :data:`CHILD_KINDS`) is restarted."""
        if kind not in CHILD_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(CHILD_KINDS)}, got {kind!r}")
        self.child_restarts.labels(kind=kind).inc()

    def call_started(self) -> None:
        """A call entered the agent."""
        self.active_calls.inc()

    def call_ended(self, *, carrier: str | None, outcome: str, route: str | None = None) -> None:
        """A call left the agent with ``outcome`` (one of :data:`OUTCOMES`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}")
        self.active_calls.dec()
        self.calls.labels(carrier=self._carrier(carrier), route=self._route(route),
                          outcome=outcome).inc()

    def second_classified(self, label: str) -> None:
        """The classifier labelled one second of audio."""
        if label not in LABELS:
            raise ValueError(f"label: expected one of {', '.join(LABELS)}, got {label!r}")
        self.classified_seconds.labels(label=label).inc()

    def code_inferred(self, *, sip_code: int, source: str, lag_s: float,
                      carrier: str | None = None) -> None:
        """The decision engine inferred ``sip_code`` ``lag_s`` seconds into early media."""
        if source not in SOURCES:
            raise ValueError(f"source: expected one of {', '.join(SOURCES)}, got {source!r}")
        self.inferred.labels(sip_code=_code(sip_code), source=source,
                             carrier=self._carrier(carrier)).inc()
        self.decision_lag.observe(lag_s)

    def code_judged(self, *, carrier: str | None, sent: int | None, inferred: int) -> None:
        """A call with inferred code ``inferred`` is over; the carrier sent ``sent``.

        Only a failed call (``sent`` 300 or above) is judged, and it differs when the codes
        do, exactly as :mod:`agent.store.queries` counts them.
        """
        if sent is None or sent < 300:
            return
        name = self._carrier(carrier)
        self.judged.labels(carrier=name).inc()
        if inferred != sent:
            self.differs.labels(carrier=name).inc()
            self.differing_codes.labels(carrier=name, sent_code=_code(sent),
                                        inferred_code=_code(inferred)).inc()

    def analysis_failed(self) -> None:
        """Analysis of a call's early media raised an error."""
        self.analysis_failures.inc()

    def carrier_final_code(self, code: int, *, carrier: str | None = None) -> None:
        """The carrier sent final response ``code``."""
        self.carrier_final.labels(code=_code(code), carrier=self._carrier(carrier)).inc()

    def fas_suspected(self, *, carrier: str | None) -> None:
        """An answered call's audio after the answer said it was not answered."""
        self.fas.labels(carrier=self._carrier(carrier)).inc()

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


def routes_of(sip: SipConfig) -> dict[str, str]:
    """The route table of ``sip`` as :class:`AgentMetrics` takes it: route → carrier."""
    return {r.name: r.carrier for r in routes(sip)}


def _bounded(name: str | None, known: set[str]) -> str:
    """``name`` as a label value: a known name, or any name-like one when none is known."""
    if not name or not _NAME.match(name) or (known and name not in known):
        return UNKNOWN
    return name


def _code(code: int) -> str:
    return str(code) if 100 <= code <= 699 else "other"
