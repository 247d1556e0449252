"""POST /api/v1/images/generate and GET /api/v1/jobs/{id}: charged, queued, delivered and
refunded exactly as /generate is, through the same GenerationService."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.cogs.conftest import png
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent
from tests.web.conftest import Web, assert_documented

PATH = "/api/v1/images/generate"
JOB = "/api/v1/jobs/{job_id}"


async def finished(web: Web, token: str, job_id: str, timeout: float = 15) -> dict[str, Any]:
    """Poll the job until it is COMPLETED or FAILED."""
    async with asyncio.timeout(timeout):
        while True:
            _, body, _ = await web.call("GET", f"/api/v1/jobs/{job_id}", token, expect=200)
            assert_documented(body, JOB, "get", 200)
            if body["status"] in ("COMPLETED", "FAILED"):
                return dict(body)
            await asyncio.sleep(0.05)


async def ledger(web: Web, discord_user: Any) -> list[tuple[str, int]]:
    user_id = await web.h.user_id(discord_user)
    rows = await web.h.app.db.fetchall(
        "SELECT kind, delta FROM coin_transactions WHERE user_id = ? ORDER BY seq", (user_id,)
    )
    return [(r["kind"], r["delta"]) for r in rows]


async def test_generation_is_charged_and_delivered_like_discord(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    _status, body, response = await web.call(
        "POST", PATH, token, json={"prompt": "a banana astronaut", "aspect_ratio": "16:9"},
        expect=202,
    )  # fmt: skip
    assert_documented(body, PATH, "post", 202)
    job = body["job"]
    assert body["balance"] == 200 and job["cost"] == 100 and job["status"] == "PENDING"
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    done = await finished(web, token, job["id"])
    assert done["status"] == "COMPLETED" and done["error"] is None and done["refund"] is None
    (image,) = done["images"]
    assert (image["width"], image["height"], image["aspect_ratio"]) == (256, 144, "16:9")
    _, data, response = await web.call("GET", image["links"]["file"], token, expect=200)
    assert data.startswith(b"\xff\xd8") and len(data) == image["size_bytes"]  # 2.1's JPEG
    assert h.api.requests[0].aspect_ratio == "16:9"
    # Nothing is posted to Discord for an API job: the result is fetched over HTTP.
    assert h.fake.channel_log == []
    # The same through /generate, for bob: the same ledger, the same kind of image row.
    rec = await h.fake.slash("generate", {"prompt": "a banana astronaut",
                                          "aspect_ratio": "16:9"}, user=h.bob)  # fmt: skip
    await rec.wait_original(lambda m: bool(m.filenames), timeout=10)
    await h.settle()  # shown first, stored meanwhile
    assert await ledger(web, h.alice) == await ledger(web, h.bob) == [
        ("STARTER", 300), ("GENERATION", -100)
    ]  # fmt: skip
    alice_row = await h.app.image_repo.get(job["id"])
    bob_row = (await h.app.image_repo.list_by_user(await h.user_id(h.bob))).items[0]
    assert alice_row is not None
    for field in ("status", "type", "coins_used", "guild_id", "prompt"):
        assert getattr(alice_row, field) == getattr(bob_row, field), field
    _, me, _ = await web.call("GET", "/api/v1/me", token, expect=200)
    assert me["wallets"][0]["coins"] == 200
    assert [row["kind"] for row in me["recent_transactions"]] == ["GENERATION", "STARTER"]
    await assert_ledger_consistent(h.app.db)


async def test_failed_generation_is_refunded_like_discord(web: Web) -> None:
    h = web.h
    h.api.default = Behaviour(Mode.BLOCK_PROMPT, reason="PROHIBITED_CONTENT")
    token = await web.token(h.alice)
    _, body, _ = await web.call("POST", PATH, token, json={"prompt": "x"}, expect=202)
    done = await finished(web, token, body["job"]["id"])
    assert done["status"] == "FAILED" and done["images"] == []
    assert done["refund"] == {"coins": 100, "owed": 0}
    assert "asks for content Google prohibits" in done["error"]["message"]
    assert "PROHIBITED_CONTENT" not in done["error"]["message"]
    rec = await h.fake.slash("generate", {"prompt": "x"}, user=h.bob)
    await rec.wait_followup(timeout=10)
    expected = [("STARTER", 300), ("GENERATION", -100), ("REFUND", 100)]
    assert await ledger(web, h.alice) == await ledger(web, h.bob) == expected
    assert await h.balance(h.alice) == 300
    # After a restart the outcome is read from the row: still FAILED with its refund.
    await h.stop_bot()
    await h.start_bot(web=True)
    again = await finished(web, token, body["job"]["id"])
    assert again["refund"] == {"coins": 100, "owed": 0} and again["error"]["message"]
    await assert_ledger_consistent(h.app.db)


async def test_multipart_generation_sends_the_input_images(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    first, second = png(40, 40, "red"), png(30, 60, "blue")
    form = aiohttp.FormData()
    form.add_field("prompt", "put them together")
    form.add_field("image", first, filename="a.png", content_type="image/png")
    form.add_field("image2", second, filename="b.png", content_type="image/png")
    _, body, _ = await web.call("POST", PATH, token, data=form, expect=202)
    await finished(web, token, body["job"]["id"])
    assert h.api.requests[0].images == [("image/png", first), ("image/png", second)]


async def test_queue_position_while_waiting(web: Web) -> None:
    h = web.h
    h.api.latency = 0.5
    tokens = [await web.token(u) for u in (h.alice, h.bob, h.mod)]
    jobs = []
    for token in tokens:
        _, body, _ = await web.call("POST", PATH, token, json={"prompt": "p"}, expect=202)
        jobs.append(body["job"])
    # Two workers: the third waits first in line.
    assert jobs[2]["position"] == 1
    for token, job in zip(tokens, jobs, strict=True):
        assert (await finished(web, token, job["id"]))["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        ({"json": {"prompt": "   "}}, 422, "prompt_empty"),
        ({"json": {"prompt": "x" * 201}}, 422, "prompt_too_long"),
        ({"json": {"prompt": "x", "aspect_ratio": "7:3"}}, 422, "aspect_unsupported"),
        ({"json": {"prompt": "x", "model": "dall-e"}}, 422, None),
        ({"json": {"prompt": "x", "seed": 4}}, 422, "api_unknown_field"),
        ({"json": {"prompt": "x", "count": 0}}, 422, "batch_count"),
        ({"json": {"prompt": "x", "count": 5}}, 422, "batch_count"),
        ({"json": {"prompt": "x", "count": 10**30}}, 422, "batch_count"),
        ({"json": {"prompt": "x", "count": "two"}}, 422, "batch_count"),
        ({"json": {"prompt": "x", "count": True}}, 422, "batch_count"),
        ({"json": {"prompt": "x", "count": 3}}, 422, "batch_count"),  # 2 job slots here
        ({"json": {"prompt": 5}}, 422, "api_not_text"),
        ({"json": {}}, 400, "api_missing_field"),
        ({"json": ["a list"]}, 400, "api_bad_json"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400,
         "api_bad_json"),
        ({"data": b"prompt", "headers": {"Content-Type": "text/plain"}}, 415, "api_not_json"),
    ],
)  # fmt: skip
async def test_bad_requests_cost_nothing(
    web: Web, request_body: dict[str, Any], status: int, code: str | None
) -> None:
    h = web.h
    token = await web.token(h.alice)
    await h.payer(h.alice)
    before = await h.counts()
    got, body, _ = await web.call("POST", PATH, token, **request_body)
    assert got == status, body
    if code is not None:
        assert body["error"]["code"] == code
    assert_documented(body, PATH, "post", status)
    assert await h.counts() == before and h.api.requests == []


async def test_a_bad_input_image_costs_nothing(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    await h.payer(h.alice)
    before = await h.counts()
    form = aiohttp.FormData()
    form.add_field("prompt", "edit this")
    form.add_field("image", b"%PDF-1.7", filename="doc.png", content_type="image/png")
    status, body, _ = await web.call("POST", PATH, token, data=form)
    assert (status, body["error"]["code"]) == (415, "image_not_image")
    assert await h.counts() == before


async def test_limits_answer_402_and_429(web: Web) -> None:
    h = web.h
    h.api.latency = 1.0
    token = await web.token(h.alice)
    first = (await web.call("POST", PATH, token, json={"prompt": "a"}, expect=202))[1]
    second = (await web.call("POST", PATH, token, json={"prompt": "b"}, expect=202))[1]
    status, body, response = await web.call("POST", PATH, token, json={"prompt": "c"})
    assert status == 429 and body["error"]["code"] == "error_too_many_jobs"
    assert int(response.headers["Retry-After"]) > 0
    for job in (first["job"], second["job"]):
        await finished(web, token, job["id"])
    h.api.latency = 0.0
    third = (await web.call("POST", PATH, token, json={"prompt": "d"}, expect=202))[1]
    await finished(web, token, third["job"]["id"])
    status, body, _ = await web.call("POST", PATH, token, json={"prompt": "e"})
    assert status == 402 and body["error"]["code"] == "error_coins"
    assert (body["error"]["balance"], body["error"]["cost"]) == (0, 100)
    assert await h.rows("images") == 3 and await h.balance(h.alice) == 0


async def test_a_servers_role_rule_applies_and_its_channel_rule_does_not(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    role = h.fake.add_role(h.guild, "artists")
    channel = h.fake.add_channel(h.guild, "art")
    for setting, value in (("channel_ids", [channel.id]), ("generate_role_id", role.id)):
        await h.app.guild_settings.repo.change(h.guild.id, setting, value, actor_id=None)
    status, body, _ = await web.call("POST", PATH, token, json={"prompt": "x"})
    assert status == 403 and body["error"]["code"] == "settings_role_required"
    assert await h.rows("images") == 0
    await h.app.guild_settings.repo.change(h.guild.id, "generate_role_id", None, actor_id=None)
    await web.call("POST", PATH, token, json={"prompt": "x"}, expect=202)


async def test_jobs_of_others_are_404(web: Web) -> None:
    h = web.h
    alice = await web.token(h.alice)
    _, body, _ = await web.call("POST", PATH, alice, json={"prompt": "x"}, expect=202)
    await finished(web, alice, body["job"]["id"])
    bob = await web.token(h.bob)
    status, answer, _ = await web.call("GET", f"/api/v1/jobs/{body['job']['id']}", bob)
    assert status == 404 and answer["error"]["code"] == "error_job_not_found"


async def test_owner_controls_apply_to_api_generations_before_any_charge(web: Web) -> None:
    """The API goes through the same services: the blocklist, a member block, the server's
    caps and age-restricted-only all refuse before a coin moves."""
    h = web.h
    token = await web.token(h.alice)

    async def mod(sub: str, options: dict[str, Any]) -> None:
        rec = await h.fake.slash(f"settings {sub}", options, user=h.mod)
        assert (await rec.wait_original()).ephemeral

    await mod("blocklist add", {"entry": "banana bomb"})
    _, body, _ = await web.call("POST", PATH, token, json={"prompt": "a BÁNÁNA bomb"}, expect=422)
    assert body["error"]["code"] == "blocklist_prompt_blocked"
    assert "bomb" not in body["error"]["message"].lower()
    await mod("set", {"setting": "daily_image_cap", "value": "1"})
    _, body, _ = await web.call("POST", PATH, token, json={"prompt": "a cat"}, expect=202)
    await finished(web, token, body["job"]["id"])
    _, body, response = await web.call("POST", PATH, token, json={"prompt": "a dog"}, expect=429)
    assert body["error"]["code"] == "budget_server_day"
    assert 0 < int(response.headers["Retry-After"]) <= 86400
    await mod("set", {"setting": "daily_image_cap", "value": "none"})
    await mod("set", {"setting": "nsfw_only", "value": "yes"})
    _, body, _ = await web.call("POST", PATH, token, json={"prompt": "a dog"}, expect=403)
    assert body["error"]["code"] == "moderation_nsfw_only"
    await mod("set", {"setting": "nsfw_only", "value": "no"})
    await mod("block", {"member": h.alice, "reason": "spam"})
    _, body, _ = await web.call("POST", PATH, token, json={"prompt": "a dog"}, expect=403)
    assert body["error"]["code"] == "moderation_member_blocked"
    assert await ledger(web, h.alice) == [("STARTER", 300), ("GENERATION", -100)]
    await assert_ledger_consistent(h.app.db)


async def test_a_batch_is_a_job_per_image_charged_and_refunded_each(web: Web) -> None:
    """`count` orders a batch exactly as /generate count: does: a job per image, all paid in
    one reservation, each refunded on its own when it fails."""
    h = web.h
    token = await web.token(h.alice)
    h.api.script([Mode.OK, Mode.UNAVAILABLE])
    _, body, response = await web.call(
        "POST", PATH, token, json={"prompt": "two pears", "count": 2}, expect=202
    )
    assert_documented(body, PATH, "post", 202)
    jobs = body["jobs"]
    assert len(jobs) == 2 and body["job"] == jobs[0] and body["balance"] == 100
    assert response.headers["Location"] == f"/api/v1/jobs/{jobs[0]['id']}"
    done = [await finished(web, token, job["id"]) for job in jobs]
    assert sorted(d["status"] for d in done) == ["COMPLETED", "FAILED"]
    assert [d["refund"] for d in done if d["status"] == "FAILED"] == [{"coins": 100, "owed": 0}]
    assert await ledger(web, h.alice) == [
        ("STARTER", 300), ("GENERATION", -100), ("GENERATION", -100), ("REFUND", 100)
    ]  # fmt: skip
    # 200 coins: a second batch of two takes them all; a third can't be paid for whole.
    _, again, _ = await web.call("POST", PATH, token, json={"prompt": "x", "count": 2}, expect=202)
    assert again["balance"] == 0
    for job in again["jobs"]:
        assert (await finished(web, token, job["id"]))["status"] == "COMPLETED"
    before = await h.counts()
    status, refused, _ = await web.call("POST", PATH, token, json={"prompt": "x", "count": 2})
    assert (status, refused["error"]["code"]) == (402, "error_coins")
    assert await h.counts() == before
    await assert_ledger_consistent(h.app.db)
