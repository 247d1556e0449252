"""deploy/grafana-dashboard.json: valid JSON in Grafana's classic model, every panel on the
datasource asked at import, and every expression naming only metrics the bot exports (read
from a live /metrics: families without samples yet included)."""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.cogs.conftest import make_harness

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
# PromQL's own words (functions, aggregations, keywords) that expressions here use.
PROMQL = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "histogram_quantile",
    "by", "without", "on", "ignoring", "le", "offset", "and", "or", "unless",
}  # fmt: skip
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metrics_in(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers less PromQL's words, label matchers
    ({...}), grouping labels (by (...)), ranges ([5m]) and numbers."""
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    return {name for name in _IDENTIFIER.findall(expr) if name not in PROMQL}


def exported_names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        names.update(sample.name for sample in family.samples)
    return names


def test_the_dashboard_is_valid_json_in_grafanas_classic_model() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(graphs) >= 20
    for panel in graphs:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] < 24
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])


async def test_every_expression_reads_metrics_the_bot_exports(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, web=True)
        assert h.app.web is not None
        async with aiohttp.ClientSession() as http, http.get(f"{h.app.web.url}/metrics") as r:
            exported = exported_names(await r.text())
    dashboard = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            names = metrics_in(target["expr"])
            assert names, target["expr"]
            missing = names - exported
            assert not missing, f"{panel['title']}: {sorted(missing)} are not exported"
            used |= names
    # What the issue asks a dashboard to show is on it.
    for wanted in ("nanobanana_interactions_total", "nanobanana_first_answer_seconds_bucket",
                   "nanobanana_deployment_jobs", "nanobanana_queue_depth",
                   "nanobanana_api_requests_total", "nanobanana_refunds_total",
                   "nanobanana_spend_usd_total", "nanobanana_budget_used_usd",
                   "nanobanana_image_pool_outstanding", "nanobanana_db_connections",
                   "process_resident_memory_bytes", "process_cpu_seconds_total"):  # fmt: skip
        assert wanted in used, wanted
