"""Making images on the web gallery (issue 23, item 7), over HTTP with a signed-in client:
the generate and edit forms order through the same services as /generate (the same checks,
limits, prices and ledger), the job page follows the job (the app's own small script, or by
hand), Cancel refunds a waiting job once; forged forms and bad input cost nothing. (The real
browser walks the same path in tests/web/test_browser.py.)"""

from __future__ import annotations

import asyncio
import html
import re

import aiohttp
import pytest

from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until
from tests.web.conftest import CSRF, Web, enable_sign_in, page, sign_in

JOB_URL = re.compile(r"/servers/\d+/jobs/([0-9a-f-]{36})")


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    status, text = await page(http, url)
    assert status == 200, text
    token = CSRF.search(text)
    assert token is not None
    return token.group(1)


async def post(
    http: aiohttp.ClientSession, url: str, data: dict[str, str]
) -> tuple[int, str, str | None]:
    async with http.post(url, data=data, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location")


async def ordered(web: Web, http: aiohttp.ClientSession, prompt: str) -> str:
    """Order an image through the form; the job's id (from the redirect to its page)."""
    make = f"{web.url}/servers/{web.h.guild.id}/make"
    csrf = await csrf_of(http, make)
    status, text, location = await post(http, make, {"csrf": csrf, "prompt": prompt,
                                                     "ratio": "16:9"})  # fmt: skip
    assert status == 303 and location is not None, text
    match = JOB_URL.fullmatch(location)
    assert match is not None, location
    return match[1]


async def test_make_an_image_on_the_web_like_discord(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    base = f"{web.url}/servers/{h.guild.id}"
    async with await sign_in(web, h.alice) as http:
        status, form = await page(http, f"{base}/make")
        assert status == 200 and "100 coins" in form  # this server's price, shown first
        job_id = await ordered(web, http, "a banana on the moon")
        # While the job waits or runs, its page (and only it) may run the app's own script,
        # which follows the job; "Check again" does it by hand.
        async with http.get(f"{base}/jobs/{job_id}") as response:
            text = await response.text()
            policy = response.headers["Content-Security-Policy"]
        if 'data-status="COMPLETED"' not in text:
            assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
            assert '<script src="/static/job.js' in text and 'id="check-again"' in text

        async def done() -> bool:
            _, text = await page(http, f"{base}/jobs/{job_id}")
            return 'data-status="COMPLETED"' in text

        await until(done, "the job completed")
        async with http.get(f"{base}/jobs/{job_id}") as response:
            text = await response.text()
            assert "script-src" not in response.headers["Content-Security-Policy"]
        assert "<script" not in text
        assert f'href="/servers/{h.guild.id}/images/{job_id}"' in text
        await h.settle()
        # In the grid, charged as /generate charges: one GENERATION row of the server's price.
        _, grid = await page(http, base)
        assert f"/media/{job_id}/thumbnail" in grid
        assert await h.balance(h.alice) == 200
        assert h.api.requests[0].prompt == "a banana on the moon"
        assert h.api.requests[0].aspect_ratio == "16:9"
        # Edit it from its page: a new paid job with the image as input.
        image_page = f"{base}/images/{job_id}"
        csrf = await csrf_of(http, image_page)
        status, text, location = await post(
            http, f"{image_page}/edit", {"csrf": csrf, "instruction": "add a red hat"}
        )
        assert status == 303 and location is not None, text
        edit_id = JOB_URL.fullmatch(location)[1]  # type: ignore[index]

        async def edited() -> bool:
            _, text = await page(http, f"{base}/jobs/{edit_id}")
            return 'data-status="COMPLETED"' in text

        await until(edited, "the edit completed")
        assert h.api.requests[1].prompt == "add a red hat"
        # The image is sent back as the model's own earlier turn (multi-turn editing), as
        # the Edit button does.
        assert len(h.api.requests[1].history_images) == 1 and h.api.requests[1].signatures
    await h.settle()
    assert await h.balance(h.alice) == 100
    await assert_ledger_consistent(h.app.db)


async def test_cancel_a_waiting_job_from_its_page(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    base = f"{web.url}/servers/{h.guild.id}"
    h.api.gate = gate = asyncio.Event()
    async with (
        await sign_in(web, h.alice) as http,
        await sign_in(web, h.mod) as mods,
        await sign_in(web, h.bob) as bobs,
    ):
        # Two slots and two lookahead workers: four jobs (alice's two, mod's two) take them.
        busy = [await ordered(web, http, f"a{n}") for n in range(2)]
        busy += [await ordered(web, mods, f"m{n}") for n in range(2)]
        await until(lambda: h.app.engine.running == 4, "every worker busy")
        waiting = await ordered(web, bobs, "bob waits")
        status, text = await page(bobs, f"{base}/jobs/{waiting}")
        assert "Waiting in the queue (position 1)" in text and 'id="cancel-job"' in text
        # alice can't see (or cancel) bob's job: not found, and it stays queued.
        status, _ = await page(http, f"{base}/jobs/{waiting}")
        assert status == 404
        csrf = await csrf_of(http, f"{base}/make")
        status, _, _ = await post(http, f"{base}/jobs/{waiting}/cancel", {"csrf": csrf})
        assert status == 404
        # A forged cancel (no token, or another session's) is refused and changes nothing.
        for forged in ({}, {"csrf": csrf}):
            status, text, _ = await post(bobs, f"{base}/jobs/{waiting}/cancel", forged)
            assert status == 403 and "This form has expired" in text
        assert await h.balance(h.bob) == 200
        bob_csrf = await csrf_of(bobs, f"{base}/make")
        status, _, location = await post(bobs, f"{base}/jobs/{waiting}/cancel", {"csrf": bob_csrf})
        assert status == 303 and location == f"/servers/{h.guild.id}/jobs/{waiting}?cancelled=1"
        _, text = await page(bobs, f"{web.url}{location}")
        assert "Cancelled: your coins are back." in text
        assert "You cancelled this job before it started" in text
        assert "<script" not in text and 'id="cancel-job"' not in text
        assert await h.balance(h.bob) == 300
        # Cancelling again, or cancelling a job a worker has: refused, nothing refunded.
        status, text, _ = await post(bobs, f"{base}/jobs/{waiting}/cancel", {"csrf": bob_csrf})
        assert status == 409 and "already ended" in html.unescape(text)
        status, text, _ = await post(http, f"{base}/jobs/{busy[0]}/cancel", {"csrf": csrf})
        assert status == 409 and "already started" in html.unescape(text)
        gate.set()
        for job_id in busy:
            client = http if job_id in busy[:2] else mods

            async def done(job_id: str = job_id, client: aiohttp.ClientSession = client) -> bool:
                _, text = await page(client, f"{base}/jobs/{job_id}")
                return 'data-status="COMPLETED"' in text

            await until(done, f"job {job_id} done")
    await h.settle()
    assert await h.balance(h.bob) == 300 and await h.balance(h.alice) == 100
    refunds = await h.app.db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE job_id = ? AND kind = 'REFUND'", (waiting,)
    )
    assert refunds == 1
    await assert_ledger_consistent(h.app.db)


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"prompt": "   "}, 422, "prompt"),
        ({"prompt": "x" * 201}, 422, "200"),
        ({"prompt": "a cat", "ratio": "7:3"}, 422, "7:3"),
        ({"prompt": "a cat", "model": "dall-e"}, 422, ""),
        ({}, 422, ""),
    ],
)
async def test_bad_input_shows_the_form_again_and_costs_nothing(
    web: Web, form: dict[str, str], status: int, message: str
) -> None:
    h = web.h
    await enable_sign_in(web)
    make = f"{web.url}/servers/{h.guild.id}/make"
    async with await sign_in(web, h.alice) as http:
        before = await h.counts()
        csrf = await csrf_of(http, make)
        answer, text, _ = await post(http, make, {"csrf": csrf, **form})
        assert answer == status, text
        assert 'id="form-error"' in text and message in html.unescape(text)
        # What was typed is kept.
        if form.get("prompt", "").strip():
            assert html.escape(form["prompt"]) in text
    assert await h.counts() == before
    assert h.api.requests == []


async def test_forms_need_a_session_and_their_csrf_token(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    make = f"{web.url}/servers/{h.guild.id}/make"
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.post(make, data={"prompt": "x"}, allow_redirects=False) as r,
    ):
        assert r.status == 302 and r.headers["Location"].startswith("/login")
    async with await sign_in(web, h.alice) as http:
        for forged in ({"prompt": "a cat"}, {"prompt": "a cat", "csrf": "forged"}):
            status, text, _ = await post(http, make, forged)
            assert status == 403 and "This form has expired" in text
        # A server the visitor is not in: not found.
        status, _ = await page(http, f"{web.url}/servers/{h.other.id}/make")
        assert status == 404
    assert h.api.requests == [] and await h.rows("jobs") == 0


async def test_a_servers_role_rule_applies_to_the_web_form(web: Web) -> None:
    """The web form orders as the member Discord says they are in that server now: with the
    roles they have there (a server that wants a role to generate is obeyed, and a member who
    has it may)."""
    h = web.h
    await enable_sign_in(web)
    role = h.fake.add_role(h.guild, "artists")
    await h.app.guild_settings.repo.change(h.guild.id, "generate_role_id", role.id, actor_id=None)
    make = f"{web.url}/servers/{h.guild.id}/make"
    async with await sign_in(web, h.alice) as http:
        csrf = await csrf_of(http, make)
        status, text, _ = await post(http, make, {"csrf": csrf, "prompt": "a cat"})
        assert status == 403 and "role to make images here" in text
        assert await h.rows("jobs") == 0
    h.fake.add_member(h.guild, h.bob, roles=[role])
    async with await sign_in(web, h.bob) as http:
        job_id = await ordered(web, http, "a cat with the role")
    assert (await h.app.engine.jobs.get(job_id)) is not None
