"""/metrics and /readyz on the real bot: what members do shows in the counters (parsed with
prometheus_client's own parser); the endpoint is guarded as documented; /readyz says which
check fails; METRICS_PORT moves it to a listener of its own."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.config import load_settings
from tests.cogs.conftest import Harness, make_harness, outcome, refusal

TOKEN = "metrics-token-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def get(url: str, path: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}{path}", headers=headers) as r:
        return r.status, await r.text()


async def restart(h: Harness, **settings: Any) -> str:
    """Restart the bot with these settings (validated, as at a real start); its web address."""
    await h.stop_bot()
    h.settings = load_settings(**{**h.settings.model_dump(), **settings})
    await h.start_bot(web=True)
    return web_url(h)


def web_url(h: Harness) -> str:
    assert h.app.web is not None
    return h.app.web.url


async def test_a_members_work_shows_in_the_metrics(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, web=True)
        done = await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice)
        await outcome(done)
        await h.settle()
        refused = await h.fake.slash("generate", {"prompt": "   "}, user=h.bob)
        await refusal(refused)
        coins = await h.fake.slash("coins", {}, user=h.alice)
        await coins.wait_original()
        status, text = await get(web_url(h), "/metrics")
        assert status == 200
        found = samples(text)
    assert value(found, "nanobanana_interactions_received_total", command="generate") == 2
    assert value(found, "nanobanana_interactions_total", command="generate", outcome="ok") == 1
    assert value(found, "nanobanana_interactions_total", command="generate",
                 outcome="refused") == 1  # fmt: skip
    assert value(found, "nanobanana_interactions_total", command="coins", outcome="ok") == 1
    assert value(found, "nanobanana_first_answer_seconds_count", command="generate") == 2
    assert 0 < value(found, "nanobanana_first_answer_seconds_sum", command="generate") < 6
    assert value(found, "nanobanana_jobs_finished_total", outcome="completed") == 1
    model = h.settings.nanobanana_model if h.settings.nanobanana_model != "auto" else None
    api = {labels: v for (name, labels), v in found.items()
           if name == "nanobanana_api_requests_total"}  # fmt: skip
    assert sum(api.values()) == 1 and dict(next(iter(api)))["status"] == "200"
    assert model is None or dict(next(iter(api)))["model"] == model
    spend = sum(v for (name, _), v in found.items() if name == "nanobanana_spend_usd_total")
    assert spend > 0
    assert value(found, "nanobanana_deployment_spend_usd_month") == spend
    assert value(found, "nanobanana_deployment_jobs", state="COMPLETED") == 1
    assert value(found, "nanobanana_deployment_jobs", state="PENDING") == 0
    assert value(found, "nanobanana_budget_used_images", scope=f"guild:{h.guild.id}") == 1
    assert value(found, "nanobanana_database_up") == 1
    assert value(found, "nanobanana_db_connections", state="open") == 2
    assert value(found, "nanobanana_deployment_processes") == 1
    assert value(found, "process_resident_memory_bytes") > 10_000_000
    assert value(found, "process_cpu_seconds_total") > 0


async def test_metrics_are_guarded(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, web=True)
        url = web_url(h)
        # Neither setting: local clients only, and not through a reverse proxy.
        assert (await get(url, "/metrics"))[0] == 200
        assert (await get(url, "/metrics", **{"X-Forwarded-For": "203.0.113.9"}))[0] == 403
        url = await restart(h, metrics_token=TOKEN)
        assert (await get(url, "/metrics"))[0] == 401
        assert (await get(url, "/metrics", Authorization="Bearer wrong-token-wrong"))[0] == 401
        status, text = await get(url, "/metrics", Authorization=f"Bearer {TOKEN}")
        assert status == 200 and "nanobanana_process_info" in text
        # A token opens it to a proxied request too (Prometheus elsewhere, through HTTPS).
        proxied = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9"}
        assert (await get(url, "/metrics", **proxied))[0] == 200
        url = await restart(h, metrics_token=None, metrics_allow="10.0.0.0/8")
        assert (await get(url, "/metrics"))[0] == 403  # 127.0.0.1 is not in it
        url = await restart(h, metrics_allow="10.0.0.0/8, 127.0.0.0/8")
        assert (await get(url, "/metrics", **{"X-Forwarded-For": "10.1.2.3"}))[0] == 200


async def test_readyz_says_what_is_not_ready(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, web=True)
        url = web_url(h)
        status, text = await get(url, "/readyz")
        assert status == 200 and '"ready"' in text
        await h.app.engine.close(deadline=1)
        status, text = await get(url, "/readyz")
        assert status == 503
        body: dict[str, Any] = __import__("json").loads(text)
        assert body["checks"] == {"database": True, "discord": True, "generation": False}
        assert (await get(url, "/healthz"))[0] == 200  # alive, if not ready


async def test_metrics_port_moves_them_to_a_listener_of_their_own(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, web=True, metrics_port=0)
        server = h.app.metrics_server
        assert server is not None and server.url
        assert (await get(web_url(h), "/metrics"))[0] == 404
        status, text = await get(server.url, "/metrics")
        assert status == 200 and "nanobanana_deployment_jobs" in text
        assert (await get(server.url, "/readyz"))[0] == 200
        assert (await get(server.url, "/healthz"))[0] == 200
