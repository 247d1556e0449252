"""Fair use, end to end: every command and button has a per-member rate limit (refusal text,
nothing charged, nothing stored), servers can be stricter, attachments are refused from what
Discord declares before anything is downloaded, the image pool says "busy" when full, and a
result shown before it could be stored stays shown while the job is refunded."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from storage.objects import LocalObjectStore
from tests.cogs.conftest import (
    MANAGE_GUILD,
    Harness,
    make_harness,
    png,
    private_answer,
    refusal,
)
from tests.fakes.discord_models import CB_MESSAGE
from tests.fakes.discord_server import FakeMessage, InteractionRecord
from tests.fakes.flaky_store import FlakyStore
from tests.pool_work import hold_until_exists
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until

# One use a minute of everything: the second use of anything is refused.
ONE_EACH = "generate=1,upload=1,gallery=1,page=1,open=1,delete=1,coins=1,other=1"
SLOW_DOWN = "Slow down! Try again in"


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Harness]:
    async with AsyncExitStack() as stack:
        harness = await make_harness(stack, tmp_path, rate_limits=ONE_EACH)
        harness.fake.keep_upload_bytes = True
        yield harness


async def state(harness: Harness) -> tuple[dict[str, int], int, int]:
    """Rows, objects, alice's balance and the model calls: what a refusal must not change."""
    await harness.settle()
    return await harness.counts(), await harness.balance(harness.alice), len(harness.api.requests)


async def assert_refused_for_free(
    harness: Harness, rec: InteractionRecord, before: tuple[dict[str, int], int, int]
) -> None:
    answer = await refusal(rec)
    assert answer.ephemeral and SLOW_DOWN in answer.content, answer.content
    assert rec.callbacks[0].type == CB_MESSAGE  # the first and only answer: no deferral
    assert await state(harness) == before


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("generate", {"prompt": "a lighthouse"}),
        ("gallery", {}),
        ("coins", {}),
        ("help", {}),
        ("upload", {"image": "png"}),
    ],
)
async def test_every_command_is_rate_limited(
    limited: Harness, command: str, options: dict[str, Any]
) -> None:
    h = limited

    def opts() -> dict[str, Any]:
        return {k: h.fake.upload(png(), "p.png") if v == "png" else v for k, v in options.items()}

    first = await h.fake.slash(command, opts(), user=h.alice)
    if command == "generate":
        await first.wait_original(has_image, timeout=10)
    else:
        await first.wait_for(lambda r: private_answer(r) is not None, timeout=10)
    before = await state(h)
    second = await h.fake.slash(command, opts(), user=h.alice)
    await assert_refused_for_free(h, second, before)
    # Bob has his own allowance.
    other = await h.fake.slash(command, opts(), user=h.bob)
    answer = await other.wait_callback()
    assert SLOW_DOWN not in str(answer.data.get("content"))


async def test_refused_attempts_count_too(limited: Harness) -> None:
    """Hammering a refused command keeps it refused (each attempt takes a token)."""
    h = limited
    first = await h.fake.slash("coins", {}, user=h.alice)
    await first.wait_for(lambda r: private_answer(r) is not None, timeout=10)
    waits = []
    for _ in range(3):
        answer = await refusal(await h.fake.slash("coins", {}, user=h.alice))
        waits.append(int(re.search(r"in (\d+) s", answer.content).group(1)))  # type: ignore[union-attr]
    # One more token owed each time, up to one bucket's worth (60 s at 1 a minute): 60, 120...
    assert waits[0] >= 59 and waits[1] >= waits[0] and waits[-1] <= 121


async def test_every_button_is_rate_limited(limited: Harness) -> None:
    h = limited
    rec = await h.fake.slash("generate", {"prompt": "a fox"}, user=h.alice)
    message = await rec.wait_original(has_image, timeout=10)
    before = await state(h)
    # Reroll counts as a new image (generate): the /generate above used the minute's one.
    await assert_refused_for_free(
        h, await h.fake.click(message, label="Reroll", user=h.alice), before
    )
    # Edit opens its form ("other"), and the form's submission is a new image (generate).
    edit = await h.fake.click(message, label="Edit", user=h.alice)
    modal = await edit.wait_modal()
    submit = await h.fake.submit_modal(modal, {"instruction": "purple"}, user=h.alice)
    await assert_refused_for_free(h, submit, before)
    again = await h.fake.click(message, label="Edit", user=h.alice)
    await assert_refused_for_free(h, again, before)
    # Delete: once a minute.
    h.app.limits.take("delete", h.alice.id, 1)
    await assert_refused_for_free(
        h, await h.fake.click(message, label="Delete", user=h.alice), before
    )
    assert await h.rows("images") == 1


async def test_gallery_paging_and_opening_are_rate_limited(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, rate_limits="page=1,open=1")
        for n in range(10):
            payer = await h.payer(h.alice)
            await h.app.uploads.upload(payer, png(20 + n, 20), filename=f"{n}.png")
        rec = await h.fake.slash("gallery", {}, user=h.alice)
        page = await rec.wait_original(lambda m: bool(m.selects()), timeout=10)
        before = await state(h)
        first = await h.fake.click(page, label="Next", user=h.alice)
        await first.wait_for(lambda r: bool(r.edits), timeout=10)
        second = await h.fake.click(page, label="Previous", user=h.alice)
        await assert_refused_for_free(h, second, before)
        select = page.selects()[0]
        value = select["options"][0]["value"]
        opened = await h.fake.select(page, select["custom_id"], [value], user=h.alice)
        await opened.wait_original(lambda m: bool(m.embeds), timeout=10)
        refused = await h.fake.select(page, select["custom_id"], [value], user=h.alice)
        await assert_refused_for_free(h, refused, before)


async def test_a_server_may_be_stricter_never_looser(harness: Harness) -> None:
    h = harness
    mod_set = await h.fake.slash(
        "settings set", {"setting": "rate_limits", "value": "gallery=1"}, user=h.mod
    )
    assert "Per-member limits a minute" in (await mod_set.wait_original()).content
    looser = await h.fake.slash(
        "settings set", {"setting": "rate_limits", "value": "coins=100000"}, user=h.mod
    )
    assert "from 1 to 10 a minute" in (await looser.wait_original()).content
    first = await h.fake.slash("gallery", {}, user=h.alice)
    await first.wait_for(lambda r: private_answer(r) is not None, timeout=10)
    before = await state(h)
    await assert_refused_for_free(h, await h.fake.slash("gallery", {}, user=h.alice), before)
    # The other server keeps the host's rates (the member's bucket is the same: the rate is
    # the server's where they act).
    other = await h.fake.slash("coins", {}, user=h.owner2, guild=h.other)
    assert SLOW_DOWN not in (await other.wait_original()).content


async def test_oversized_attachments_are_answered_before_any_download(harness: Harness) -> None:
    h = harness
    h.fake.keep_upload_bytes = True
    limit = h.settings.max_upload_bytes
    big = h.fake.upload(png(), "huge.png", size=limit + 1)
    huge = h.fake.upload(png(), "wide.png", width=8000, height=8000)  # 64 MP declared
    gif = h.fake.upload(png(), "a.gif", content_type="image/gif")
    before = await state(h)
    for file, phrase in ((big, "the limit is"), (huge, "too big"), (gif, "PNG, JPEG or WebP")):
        rec = await h.fake.slash("generate", {"prompt": "x", "image": file}, user=h.alice)
        answer = await rec.wait_original()
        assert rec.callbacks[0].type == CB_MESSAGE and answer.ephemeral
        assert phrase in answer.content, answer.content
        assert rec.ack_latency is not None and rec.ack_latency < 3
    assert h.fake.downloads == []
    assert await state(h) == before


async def test_attachments_are_downloaded_only_after_the_answer(harness: Harness) -> None:
    h = harness
    h.fake.keep_upload_bytes = True
    file = h.fake.upload(png(600, 400, "teal"), "ok.png")
    rec = await h.fake.slash("generate", {"prompt": "x", "image": file}, user=h.alice)
    await rec.wait_original(has_image, timeout=10)
    assert rec.first_callback_at is not None
    ((file_id, served_at),) = h.fake.downloads
    assert file_id == file.id and served_at > rec.first_callback_at
    # What the model got is the shrunk input (here: small already, sent as it was).
    assert h.api.requests[0].images[0][0] == "image/png"


async def test_a_full_image_pool_says_busy(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, image_workers=1, image_queue=0)
        payer = await h.payer(h.alice)
        await h.app.uploads.upload(payer, png(), filename="a.png")
        # Keep the pool's one worker busy until the refusal is seen.
        release = tmp_path / "release"
        blocker = asyncio.create_task(
            h.app.imagework.run(hold_until_exists, str(release), wait=True)
        )
        await until(lambda: not h.app.imagework.has_room(), "the pool to be full")
        before = await state(h)
        rec = await h.fake.slash("gallery", {}, user=h.alice)
        answer = await refusal(rec)
        assert "busy with images" in answer.content and "Nothing was charged" in answer.content
        assert await state(h) == before
        release.touch()
        await blocker


async def test_a_result_shown_but_not_stored_stays_shown_and_is_refunded(
    tmp_path: Path,
) -> None:
    """Delivery first: if storing fails for good after the member saw the image, they keep
    the message with the image, are told it is not in their gallery, get their coins back;
    the job ends FAILED with no object left, and the ledger agrees."""
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path)
        await h.stop_bot()
        local = LocalObjectStore(tmp_path / "objects")
        await local.open()
        flaky = FlakyStore(local, fail_put=lambda key: key.startswith("thumbnails/"))
        await h.start_bot(store=flaky)
        rec = await h.fake.slash("generate", {"prompt": "a comet"}, user=h.alice)
        shown = await rec.wait_original(has_image, timeout=10)
        assert shown.components  # Reroll / Edit / Delete while it is being stored
        note = await rec.wait_original(lambda m: "couldn't be kept" in m.content, timeout=20)
        assert has_image(note) and not note.deleted  # the image stays
        assert "refunded 100 coins" in note.content and not note.components
        await h.settle()
        assert await h.balance(h.alice) == 300
        assert await local.list() == []
        # The job ended FAILED and refunded; no image row was written.
        (job,) = await h.app.db.fetchall("SELECT status, result FROM jobs")
        assert job["status"] == "FAILED" and "reason.storage" in job["result"]
        assert await h.rows("images") == 0
        assert await h.app.image_repo.count_by_user(await h.user_id(h.alice)) == 0
        await assert_ledger_consistent(h.app.db)


async def test_moderators_see_the_rate_limits_in_settings(harness: Harness) -> None:
    h = harness
    h.fake.add_member(h.guild, h.mod, permissions=MANAGE_GUILD)
    rec = await h.fake.slash("settings show", {}, user=h.mod)
    text = (await rec.wait_original()).embed_text()
    assert "Per-member limits a minute" in text and "generate 10" in text
