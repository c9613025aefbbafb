"""Carrier and route labels, honesty counts, child restarts and health in ``/metrics``
(issue 13, item 3), fed the messages a worker and an analysis process send and read from
the text prometheus_client serves."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.api.metrics import AgentMetrics, routes_of
from agent.labels import Inferred
from agent.settings import AgentConfig
from agent.sip import messages as m
from agent.sip.routes import CarrierConfig, RouteConfig
from agent.sip.supervisor import Supervisor
from agent.store.calls import CallStore
from agent.store.queries import honesty
from tests.child_pipe import Pipe

ROUTES = {"de-mobile": "acme", "de-fixed": "acme", "uk": "globex"}


def scraped(metrics: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What ``/metrics`` serves: sample name and sorted labels → value."""
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.fixture
def sup() -> Supervisor:
    cfg = AgentConfig()
    sip = replace(cfg.sip, restart_backoff_s=0.0,
                  carriers={"acme": CarrierConfig(addresses=["10.0.0.1:5060"]),
                            "globex": CarrierConfig(addresses=["10.0.0.2:5060"])},
                  routes=[RouteConfig(name="de-mobile", carrier="acme", prefix="4915"),
                          RouteConfig(name="de-fixed", carrier="acme", prefix="49"),
                          RouteConfig(name="uk", carrier="globex", prefix="44")])
    cfg = replace(cfg, sip=sip)
    s = Supervisor(cfg, "unused.yaml", store=CallStore(":memory:"),
                   metrics=AgentMetrics(CollectorRegistry(), routes=routes_of(sip)),
                   notifier=None)
    for child in (*s.workers, *s.analysts):
        child.writer = Pipe()  # type: ignore[assignment]
    yield s
    s.store.close()


def call(sup: Supervisor, call_id: str, *, route: str, carrier: str, inferred: int | None,
         final: int, state: str = "failed") -> None:
    """A call through ``route`` whose early media gave ``inferred`` and the carrier ``final``."""
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CallStarted(call_id=call_id, correlation_id=None,
                                         from_uri="sip:d@h", to_uri="sip:4915123@h",
                                         source="127.0.0.1", t=1.0, route=route,
                                         carrier=carrier))
    sup.on_message(worker, m.EarlyMedia(call_id=call_id, codec="PCMU", path="/x.wav", t=1.0))
    if inferred is not None:
        data = Inferred(inferred, "inferred", None, "classifier").as_json()
        sup.on_message(analyst, m.AnalysisEvent(call_id=call_id, kind="inferred", data=data,
                                                audio_s=3.0, lag_s=0.01))
    if final == 200:
        sup.on_message(worker, m.CarrierProgress(call_id=call_id, code=200, t=5.0))
    else:
        sup.on_message(worker, m.CarrierFinal(call_id=call_id, code=final, reason=None,
                                              t=9.0, wait=False))
    sup.on_message(worker, m.CallEnded(call_id=call_id, state=state, dialer_code=final,
                                       carrier_code=final, rewritten=False, t=9.1))
    sup.on_message(analyst, m.FinalInference(call_id=call_id, inferred=None, audio_s=8.0))


def test_every_route_and_carrier_series_exists_before_the_first_call() -> None:
    got = scraped(AgentMetrics(CollectorRegistry(), routes=ROUTES))
    for route, carrier in ROUTES.items():
        assert got[("ema_calls_total", (("carrier", carrier), ("outcome", "answered"),
                                        ("route", route)))] == 0
    for carrier in ("acme", "globex"):
        assert got[("ema_code_judged_total", (("carrier", carrier),))] == 0
        assert got[("ema_code_differs_total", (("carrier", carrier),))] == 0
    for kind in ("worker", "analyst"):
        assert got[("ema_child_restarts_total", (("kind", kind),))] == 0
    assert got[("ema_health_ok", ())] == 1


def test_calls_are_counted_per_route_and_carrier(sup) -> None:
    call(sup, "a", route="de-mobile", carrier="acme", inferred=None, final=200,
         state="connected")
    call(sup, "b", route="uk", carrier="globex", inferred=486, final=486)
    got = scraped(sup.metrics)
    assert got[("ema_calls_total", (("carrier", "acme"), ("outcome", "answered"),
                                    ("route", "de-mobile")))] == 1
    assert got[("ema_calls_total", (("carrier", "globex"), ("outcome", "failed"),
                                    ("route", "uk")))] == 1
    assert got[("ema_inferred_total", (("carrier", "globex"), ("sip_code", "486"),
                                       ("source", "classifier")))] == 1
    assert got[("ema_carrier_final_total", (("carrier", "globex"), ("code", "486")))] == 1


def test_honesty_counts_the_calls_the_store_judges(sup) -> None:
    call(sup, "differs", route="de-mobile", carrier="acme", inferred=404, final=480)
    call(sup, "agrees", route="de-fixed", carrier="acme", inferred=486, final=486)
    call(sup, "answered", route="de-mobile", carrier="acme", inferred=480, final=200,
         state="connected")
    call(sup, "unjudged", route="de-mobile", carrier="acme", inferred=None, final=503)
    got = scraped(sup.metrics)
    [row] = honesty(sup.store, "carrier", sup.store.get("differs").started_at)
    assert (row.key, row.judged, row.differs) == ("acme", 2, 1)
    assert got[("ema_code_judged_total", (("carrier", "acme"),))] == row.judged
    assert got[("ema_code_differs_total", (("carrier", "acme"),))] == row.differs
    assert got[("ema_differing_codes_total", (("carrier", "acme"), ("inferred_code", "404"),
                                              ("sent_code", "480")))] == 1
    assert got[("ema_code_judged_total", (("carrier", "globex"),))] == 0


@pytest.mark.parametrize("name", ["sip:4915123@10.0.0.1", "4915123456", "initech", None])
def test_names_outside_the_route_table_are_unknown(name: str | None) -> None:
    metrics = AgentMetrics(CollectorRegistry(), routes=ROUTES)
    metrics.call_started()
    metrics.call_ended(carrier=name, route=name, outcome="failed")
    assert scraped(metrics)[("ema_calls_total", (("carrier", "unknown"), ("outcome", "failed"),
                                                 ("route", "unknown")))] == 1


def test_a_uri_is_never_a_label_even_without_a_route_table() -> None:
    metrics = AgentMetrics(CollectorRegistry())
    metrics.fas_suspected(carrier="sip:acme@10.0.0.1")
    assert scraped(metrics)[("ema_fas_suspected_total", (("carrier", "unknown"),))] == 1


def test_a_dead_child_is_counted_when_it_is_restarted(sup, monkeypatch) -> None:
    spawned = []

    async def spawn(child: Any) -> None:
        spawned.append(child)

    monkeypatch.setattr(sup, "_spawn", spawn)
    asyncio.run(sup._child_died(sup.analysts[0]))
    asyncio.run(sup._child_died(sup.workers[1]))
    got = scraped(sup.metrics)
    assert spawned == [sup.analysts[0], sup.workers[1]]
    assert got[("ema_child_restarts_total", (("kind", "analyst"),))] == 1
    assert got[("ema_child_restarts_total", (("kind", "worker"),))] == 1


def test_health_is_read_from_the_supervisor_at_each_scrape(sup) -> None:
    sup.metrics.watch_health(sup.health)
    children = [*sup.workers, *sup.analysts]
    assert scraped(sup.metrics)[("ema_health_ok", ())] == 0
    assert scraped(sup.metrics)[("ema_health_problems", ())] == len(children)
    for child in children:
        child.ready.set()
    assert scraped(sup.metrics)[("ema_health_ok", ())] == 1
    assert scraped(sup.metrics)[("ema_health_problems", ())] == 0


def test_an_unknown_child_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        AgentMetrics(CollectorRegistry()).child_restarted("kamailio")
