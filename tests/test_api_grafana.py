"""The Grafana dashboard only queries metrics and labels the agent really exports."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.api.metrics import AgentMetrics
from agent.paths import CONFIG_DIR

DASHBOARD = CONFIG_DIR / "grafana" / "early-media-agent.json"


def exported() -> dict[str, set[str]]:
    """Sample names the agent's ``/metrics`` text holds, each with the label names it
    carries, once every family has at least one series."""
    registry = CollectorRegistry()
    m = AgentMetrics(registry, routes={"de-mobile": "acme", "uk": "globex"})
    m.watch_health(lambda: [])
    m.call_started()
    m.call_ended(carrier="acme", route="de-mobile", outcome="answered")
    m.second_classified("music")
    m.code_inferred(sip_code=404, source="fingerprint", lag_s=2.0, carrier="acme")
    m.code_judged(carrier="acme", sent=480, inferred=404)
    m.analysis_failed()
    m.carrier_final_code(480, carrier="acme")
    m.fas_suspected(carrier="globex")
    m.child_restarted("worker")
    m.webhook_queued(0)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        assert family.samples, f"{family.name} has no series: record one above"
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]] + [
        v["definition"] for v in dashboard["templating"]["list"] if "definition" in v
    ]


def test_every_queried_metric_is_exported_with_the_grouped_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names = exported()
    queries = exprs(dashboard)
    assert queries
    for expr in queries:
        used = re.findall(r"\bema_[a-z_]+", expr)
        assert used, expr
        for name in used:
            assert name in names, f"{name} is not exported: {expr}"
        labels = set().union(*(names[n] for n in used))
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels, f"{label} is not a label of {used}: {expr}"
        for label in re.findall(r"([a-z_]+)=~?\"", expr):
            assert label in labels, f"{label} is not a label of {used}: {expr}"
        for label in re.findall(r"label_values\([^,]*,\s*([a-z_]+)\)", expr):
            assert label in labels, f"{label} is not a label of {used}: {expr}"


def test_dashboard_covers_asr_codes_lag_honesty_restarts_and_health() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    joined = "\n".join(exprs(dashboard))
    for needle in ('outcome="answered"', "ema_inferred_total", "histogram_quantile(0.99",
                   "ema_active_calls", "sum by (route)", "ema_code_differs_total",
                   "ema_code_judged_total", "ema_differing_codes_total",
                   "ema_child_restarts_total", "ema_health_problems"):
        assert needle in joined
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for ref in set(re.findall(r"\$([a-z]+)", joined)) - {"__range", "__rate_interval"}:
        assert ref in variables
