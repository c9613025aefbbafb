"""The Grafana dashboard only queries metrics and labels the agent really exports."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from agent.api.metrics import AgentMetrics
from agent.paths import CONFIG_DIR

DASHBOARD = CONFIG_DIR / "grafana" / "early-media-agent.json"


def exported() -> dict[str, set[str]]:
    """Sample names the agent exports, each with the label names it carries."""
    registry = CollectorRegistry()
    m = AgentMetrics(registry)
    m.call_started()
    m.call_ended(carrier="acme", outcome="answered")
    m.second_classified("music")
    m.code_inferred(sip_code=404, source="fingerprint", lag_s=2.0)
    m.analysis_failed()
    m.carrier_final_code(480)
    names: dict[str, set[str]] = {}
    for family in registry.collect():
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


def test_dashboard_covers_asr_codes_lag_and_active_calls() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    joined = "\n".join(exprs(dashboard))
    for needle in ('outcome="answered"', "ema_inferred_total", "histogram_quantile(0.99",
                   "ema_active_calls"):
        assert needle in joined
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for ref in set(re.findall(r"\$([a-z]+)", joined)) - {"__range", "__rate_interval"}:
        assert ref in variables
