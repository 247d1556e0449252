"""The web gallery in a real browser: Debian's chromium driven by Playwright (no browser
download). Sign in with Discord (the fake), see the grid, open an image, delete one; every page
on the way is checked with axe-core (tests/web/axe.py); a screenshot of the grid is written to
bench/results/web-gallery.png."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.fakes.nanobanana_server import render_png
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until
from tests.web.axe import audit, axe_script
from tests.web.conftest import Web, enable_sign_in

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "bench" / "results" / "web-gallery.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
# What works on this project's machines (no network, root, no GPU).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TITLES = ["Banana astronaut", "Sunset over the bay", "Robot garden", "Neon alley",
          "Paper boats", "Mountain cabin", "Koi pond"]  # fmt: skip


async def test_sign_in_browse_open_and_delete(web: Web) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    playwright_api = pytest.importorskip("playwright.async_api")
    axe = axe_script()
    h = web.h
    await enable_sign_in(web)
    payer = await h.payer(h.alice)
    for n, title in enumerate(TITLES):
        width, height = [(512, 512), (640, 360), (360, 640), (512, 384)][n % 4]
        await h.app.uploads.upload(payer, render_png(width, height), filename=f"{n}.png",
                                   title=title)  # fmt: skip
    h.fake.oauth.user = h.alice
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 760})
            page.set_default_timeout(15_000)
            await page.goto(f"{web.url}/")
            await audit(page, axe, "the home page")
            await page.click("#sign-in")
            await page.wait_for_url(f"{web.url}/servers/{h.guild.id}")
            await audit(page, axe, "a server's grid")
            cards = page.locator("#grid li")
            assert await cards.count() == len(TITLES)
            assert "Signed in as alice" in await page.inner_text("header")
            # Every thumbnail really loaded (through the app, with the session's access check).
            await page.wait_for_function(
                "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)
            # Newest first: the last upload opens.
            await cards.first.locator("a").click()
            await page.wait_for_selector("#full-image")
            await page.wait_for_function(
                "() => document.querySelector('#full-image').naturalWidth > 0"
            )
            assert TITLES[-1] in await page.inner_text("h1")
            details = await page.inner_text(".details")
            assert "360×640" in details and "Uploaded" in details and "UTC" in details
            await audit(page, axe, "an image's page")
            await page.click("#delete")
            await page.wait_for_selector("#confirm-delete")
            await audit(page, axe, "the delete confirmation")
            await page.click("#confirm-delete")
            await page.wait_for_selector("p.notice[role=status]")
            assert await page.locator("#grid li").count() == len(TITLES) - 1
            await audit(page, axe, "the grid after a deletion")
            await page.goto(f"{web.url}/all")
            results = await audit(page, axe, "the all-servers grid")
            passed = {rule["id"] for rule in results["passes"]}
            assert {"color-contrast", "page-has-heading-one"} <= passed
            assert (await page.inner_text("h1")).strip()
            await page.goto(f"{web.url}/servers/{h.guild.id}/images/not-an-image")
            await audit(page, axe, "a not-found page")
        finally:
            await browser.close()
    assert await h.rows("images") == len(TITLES) - 1
    assert SCREENSHOT.stat().st_size > 10_000


async def test_make_an_image_follow_it_and_cancel_one(web: Web) -> None:
    """The web form (issue 23, item 7) in the real browser: make an image, watch its page
    follow the job by itself (the app's own script, which only that page's CSP allows) until
    it is done and in the grid; then order one that waits in the queue and cancel it
    (refunded)."""
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    playwright_api = pytest.importorskip("playwright.async_api")
    axe = axe_script()
    h = web.h
    await enable_sign_in(web)
    h.fake.oauth.user = h.alice
    base = f"{web.url}/servers/{h.guild.id}"
    h.api.gate = gate = asyncio.Event()  # the API answers when the test says
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 760})
            page.set_default_timeout(15_000)
            await page.goto(f"{web.url}/login?next=/servers/{h.guild.id}")
            await page.wait_for_url(base)
            await page.click("#make-link")
            await page.wait_for_selector("#make-form")
            assert "100 coins" in await page.inner_text("#price")
            await audit(page, axe, "the make form")
            # A bad prompt first: the form again, with the reason; nothing charged.
            await page.fill("#prompt", "   ")
            await page.click("#make")
            await page.wait_for_selector("#form-error")
            await audit(page, axe, "the make form with an error")
            await page.fill("#prompt", "a banana astronaut on the moon")
            await page.select_option("#ratio", "16:9")
            await page.click("#make")
            await page.wait_for_selector("#job[data-status='PROCESSING']")
            assert "Making your image" in await page.inner_text("#job-state")
            await audit(page, axe, "a job's page while it runs")
            gate.set()
            # The page follows the job in place until the image is made.
            await page.wait_for_selector("#job[data-status='COMPLETED']")
            await page.wait_for_function(
                "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            await h.settle()
            assert await h.app.engine.jobs.list_unfinished() == []
            await page.click("text=Back to the gallery")
            await page.wait_for_url(base)
            assert await page.locator("#grid li").count() == 1
            assert await h.balance(h.alice) == 200
            # Now every worker is busy (others' jobs through the API, held at the API).
            h.api.gate = held = asyncio.Event()
            busy = [await web.token(user) for user in (h.bob, h.mod)]
            for token in busy:
                for n in range(2):
                    await web.call("POST", "/api/v1/images/generate", token,
                                   json={"prompt": f"busy {n}"}, expect=202)  # fmt: skip
            await until(lambda: h.app.engine.running == 4, "every worker busy")
            await page.click("#make-link")
            await page.fill("#prompt", "this one waits")
            await page.click("#make")
            await page.wait_for_selector("#cancel-job")
            assert "Waiting in the queue (position 1)" in await page.inner_text("#job-state")
            await audit(page, axe, "a waiting job's page")
            assert await h.balance(h.alice) == 100
            await page.click("#cancel-job")
            await page.wait_for_selector("#cancelled")
            assert "before it started" in await page.inner_text("#job-state")
            assert await page.locator("#cancel-job").count() == 0
            assert await h.balance(h.alice) == 200
            held.set()
        finally:
            await browser.close()
    await h.settle()
    assert await h.rows("images") == 5  # alice's first, and the four busy ones
    await assert_ledger_consistent(h.app.db)
