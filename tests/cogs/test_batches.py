"""Batches (`/generate count:`) and the Variations button, end to end through real discord.py
against the fake Discord and the fake Nano Banana API (issue 23, items 1 and 2).

A batch is one message whose images are each a job of their own: charged per image in one
reservation, refunded on its own when it fails (exactly once), and shown together with a row
of numbered buttons per image. Refusals (a bad count, the balance for the whole batch, the
member's slots) are private and free, before the first public answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from bot.services.generation.values import VARIATION_DIRECTIVE
from tests.cogs.conftest import Harness, make_harness, png, refusal
from tests.fakes.discord_server import FakeGuild, FakeMessage, FakeUser, InteractionRecord
from tests.fakes.nanobanana_server import Mode
from tests.storage.helpers import assert_ledger_consistent

RICH: dict[str, Any] = {"starter_coins": 1000, "max_jobs_per_user": 4}


@pytest.fixture
async def rich(tmp_path: Path) -> AsyncIterator[Harness]:
    """Members start with 1,000 coins and may have 4 jobs at once (a full batch)."""
    async with AsyncExitStack() as stack:
        yield await make_harness(stack, tmp_path, **RICH)


@pytest.fixture(params=["guild", "global"])
async def scoped(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with AsyncExitStack() as stack:
        yield await make_harness(stack, tmp_path, economy_scope=request.param, **RICH)


def images_in(message: FakeMessage) -> list[str]:
    return [name for name in message.filenames if name.startswith("nanobanana-")]


def labels(message: FakeMessage) -> list[str]:
    return [str(b.get("label")) for b in message.buttons()]


async def batch(
    h: Harness, count: int, *, user: FakeUser | None = None, guild: FakeGuild | None = None,
    prompt: str = "a banana choir", **options: object,
) -> InteractionRecord:  # fmt: skip
    return await h.fake.slash(
        "generate", {"prompt": prompt, "count": count, **options},
        user=user or h.alice, guild=guild,
    )  # fmt: skip


async def shown(rec: InteractionRecord, images: int, timeout: float = 20) -> FakeMessage:
    """The batch's message once it shows `images` images."""
    return await rec.wait_original(lambda m: len(images_in(m)) == images, timeout=timeout)


async def ledger_kinds(h: Harness) -> dict[str, int]:
    rows = await h.app.db.fetchall(
        "SELECT kind, COUNT(*) FROM coin_transactions WHERE kind <> 'STARTER' "
        "GROUP BY kind ORDER BY kind"
    )
    return {str(r[0]): int(r[1]) for r in rows}


async def job_statuses(h: Harness) -> list[str]:
    rows = await h.app.db.fetchall("SELECT status FROM jobs ORDER BY status")
    return [str(r[0]) for r in rows]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
async def test_a_batch_shows_its_images_together_and_charges_each(
    rich: Harness, count: int
) -> None:
    h = rich
    rec = await batch(h, count)
    await rec.wait_callback()
    first = rec.callbacks[0].data["content"]
    message = await shown(rec, count)
    await h.settle()
    assert not message.ephemeral
    if count == 1:
        # One image: the usual answer, its buttons unnumbered (Variations among them).
        assert labels(message) == ["Reroll", "Edit", "Variations", "Delete", "Continue in a thread"]
    else:
        # The quote: count × price, in the very first answer.
        assert f"{count} images, {count} × 100 coins = {count * 100} coins" in first
        assert len(message.embeds) == count
        assert f"{count} × 100 coins = {count * 100} coins" in message.embed_text()
        # A row of numbered buttons per image: 5 rows of 5 buttons at most.
        rows = message.components
        assert len(rows) == count <= 5 and all(len(r["components"]) <= 5 for r in rows)
        for number, row in enumerate(rows, start=1):
            assert [b["label"] for b in row["components"]] == [
                f"Reroll {number}", f"Edit {number}", f"Variations {number}",
                f"Delete {number}",
            ]  # fmt: skip
    assert len(h.api.requests) == count
    assert await h.balance(h.alice) == 1000 - 100 * count
    # Each image its own job, charged once (one ledger row each, naming its job).
    assert await job_statuses(h) == ["COMPLETED"] * count
    assert await ledger_kinds(h) == {"GENERATION": count}
    paid = await h.app.db.fetchall("SELECT job_id FROM coin_transactions WHERE kind = 'GENERATION'")
    assert len({r[0] for r in paid}) == count
    assert await h.rows("images") == count
    await assert_ledger_consistent(h.app.db)


@pytest.mark.parametrize(("count", "phrase"), [(0, "1 to 4"), (5, "1 to 4"), (10**12, "1 to 4")])
async def test_bad_counts_are_refused_privately_and_free(
    rich: Harness, count: int, phrase: str
) -> None:
    h = rich
    before = await h.counts()
    rec = await h.fake.slash(
        "generate", {"prompt": "x", "count": count}, user=h.alice, validate=False
    )
    message = await rec.wait_original()
    assert (
        message.ephemeral
        and phrase in message.content
        and "Nothing was charged" in (message.content)
    )
    assert await h.counts() == before
    assert h.api.requests == []


async def test_the_server_caps_the_batch_and_its_moderators_set_it(rich: Harness) -> None:
    h = rich
    rec = await h.fake.slash("settings set", {"setting": "max_batch", "value": "2"}, user=h.mod)
    assert "is now 2" in (await rec.wait_original()).content
    bad = await h.fake.slash("settings set", {"setting": "max_batch", "value": "9"}, user=h.mod)
    assert "from 1 to 4" in (await bad.wait_original()).content
    refused = await batch(h, 3)
    answer = await refused.wait_original()
    assert answer.ephemeral and "1 to 2 images" in answer.content
    # The other server keeps the default (4).
    other = await batch(h, 3, user=h.owner2, guild=h.other)
    await shown(other, 3)
    await h.settle()
    assert await h.balance(h.alice) == 1000
    assert await h.balance(h.owner2, h.other) == 700
    await assert_ledger_consistent(h.app.db)


async def test_a_batch_needs_the_coins_for_every_image(harness: Harness) -> None:
    # 300 coins, 4 images at 100 each: refused whole, privately; nothing is charged.
    await harness.stop_bot()
    await harness.start_bot(max_jobs_per_user=4)
    rec = await batch(harness, 4)
    message = await refusal(rec)
    assert message.ephemeral and "You need 400 coins but have 300" in message.content
    # The member's first use opened their wallet (its starter coins): nothing else.
    assert await ledger_kinds(harness) == {}
    assert await harness.rows("jobs") == 0 == await harness.rows("images")
    # Now their balance is known: refused before any public answer at all.
    again = await batch(harness, 4)
    answer = await again.wait_original()
    assert answer.ephemeral and "You need 400 coins but have 300" in answer.content
    assert not any(m.deleted for m in again.messages)
    assert await harness.balance(harness.alice) == 300
    assert harness.api.requests == []
    await assert_ledger_consistent(harness.app.db)


async def test_a_batch_is_capped_by_the_members_job_slots(harness: Harness) -> None:
    # MAX_JOBS_PER_USER=2: a batch of 3 can never fit; one of 2 can't while a job runs.
    rec = await batch(harness, 3)
    message = await rec.wait_original()
    assert message.ephemeral and "1 to 2 images" in message.content
    harness.api.latency = 1.0
    running = await harness.fake.slash("generate", {"prompt": "one"}, user=harness.alice)
    await running.wait_callback()
    busy = await batch(harness, 2)
    answer = await refusal(busy)
    assert "in progress" in answer.content
    await running.wait_original(lambda m: bool(images_in(m)), timeout=10)
    await harness.settle()
    assert await harness.balance(harness.alice) == 200
    assert len(harness.api.requests) == 1


async def test_a_batch_takes_a_rate_limit_use_per_image(rich: Harness) -> None:
    h = rich
    await h.stop_bot()
    await h.start_bot(rate_limits={**h.settings.rate_limits, "generate": 3})
    # Three uses a minute: a batch of 4 is over what a minute allows at all.
    rec = await batch(h, 4)
    assert "1 to 3 images" in (await rec.wait_original()).content
    done = await batch(h, 3)
    await shown(done, 3)
    await h.settle()
    # The bucket is empty now: even one more image must wait.
    again = await h.fake.slash("generate", {"prompt": "one more"}, user=h.alice)
    assert "Slow down" in (await again.wait_original()).content
    assert await h.balance(h.alice) == 700


async def test_one_failed_image_is_refunded_alone_and_once(rich: Harness) -> None:
    h = rich
    h.api.script([Mode.OK, Mode.UNAVAILABLE, Mode.OK])
    rec = await batch(h, 3)
    message = await shown(rec, 2)
    told = await rec.wait_followup()
    await h.settle()
    assert told.ephemeral and "of 3:" in told.content and "refunded 100 coins" in told.content
    assert len(message.embeds) == 2 and len(message.components) == 2
    # Charged three times, refunded once: the failed job's own refund.
    assert await h.balance(h.alice) == 800
    assert await ledger_kinds(h) == {"GENERATION": 3, "REFUND": 1}
    assert await job_statuses(h) == ["COMPLETED", "COMPLETED", "FAILED"]
    refunded = await h.app.db.fetchval(
        "SELECT t.job_id FROM coin_transactions t JOIN jobs j ON j.id = t.job_id "
        "WHERE t.kind = 'REFUND' AND j.status = 'FAILED'"
    )
    assert refunded is not None
    assert await h.rows("images") == 2
    await assert_ledger_consistent(h.app.db)


async def test_a_batch_where_every_image_fails_leaves_only_the_private_answer(
    rich: Harness,
) -> None:
    h = rich
    h.api.default = Mode.UNAVAILABLE
    rec = await batch(h, 2)
    told = await rec.wait_followup(timeout=20)
    await h.settle()
    assert told.ephemeral and "Image 1 of 2" in told.content and "Image 2 of 2" in told.content
    assert rec.original is not None and rec.original.deleted
    assert await h.balance(h.alice) == 1000
    assert await ledger_kinds(h) == {"GENERATION": 2, "REFUND": 2}
    await assert_ledger_consistent(h.app.db)


async def test_batches_in_two_servers_pay_from_the_scopes_wallets(scoped: Harness) -> None:
    h = scoped
    first = await batch(h, 2, user=h.owner2)
    await shown(first, 2)
    await h.settle()
    # (A member's job slots are theirs in every server: one batch at a time here.)
    second = await batch(h, 3, user=h.owner2, guild=h.other)
    await shown(second, 3)
    await h.settle()
    if h.settings.economy_scope.value == "guild":
        assert await h.balance(h.owner2) == 800
        assert await h.balance(h.owner2, h.other) == 700
        assert await h.rows("wallets") == 2
    else:
        assert await h.balance(h.owner2) == 500 == await h.balance(h.owner2, h.other)
        assert await h.rows("wallets") == 1
    guilds = await h.app.db.fetchall("SELECT guild_id, COUNT(*) FROM jobs GROUP BY guild_id")
    assert sorted(int(r[1]) for r in guilds) == [2, 3]
    await assert_ledger_consistent(h.app.db)


async def test_variations_of_a_batch_image(rich: Harness) -> None:
    h = rich
    reference = png(40, 40, "purple")
    rec = await batch(h, 2, image=h.fake.upload(reference, "ref.png"))
    message = await shown(rec, 2)
    await h.settle()
    second = images_in(message)[1]
    click = await h.fake.click(message, label="Variations 2", user=h.alice)
    varied = await click.wait_original(lambda m: bool(images_in(m)), timeout=15)
    await h.settle()
    assert varied.id != message.id
    assert labels(varied) == ["Reroll", "Edit", "Variations", "Delete", "Continue in a thread"]
    sent = h.api.requests[2]
    # The same prompt and references, the image itself as the last reference.
    assert sent.prompt is not None and sent.prompt.startswith("a banana choir")
    assert VARIATION_DIRECTIVE in sent.prompt
    assert sent.images[0] == ("image/png", reference) and len(sent.images) == 2
    # Priced like an edit: one image's price, from the same wallet.
    assert await h.balance(h.alice) == 1000 - 300
    rows = await h.app.db.fetchall("SELECT id, prompt, metadata FROM images ORDER BY created_at")
    assert len(rows) == 3
    newest = await h.app.image_repo.get(str(rows[-1][0]))
    assert newest is not None and newest.prompt == "a banana choir"
    short = second.removeprefix("nanobanana-").split(".")[0]
    assert newest.metadata["source_image_ids"][0].startswith(short)
    assert newest.metadata.get("variation") is True
    # Someone else's press is refused, privately and free.
    other = await h.fake.click(message, label="Variations 1", user=h.bob)
    assert "isn't yours" in (await other.wait_original()).content
    await assert_ledger_consistent(h.app.db)


async def test_variations_on_a_single_result_and_its_reroll(rich: Harness) -> None:
    h = rich
    rec = await h.fake.slash("generate", {"prompt": "a lone pear"}, user=h.alice)
    message = await rec.wait_original(lambda m: bool(images_in(m)), timeout=10)
    await h.settle()
    click = await h.fake.click(message, label="Variations", user=h.alice)
    varied = await click.wait_original(lambda m: bool(images_in(m)), timeout=10)
    await h.settle()
    assert VARIATION_DIRECTIVE in (h.api.requests[1].prompt or "")
    assert len(h.api.requests[1].images) == 1
    # A reroll of a variation is another variation of the same image.
    again = await h.fake.click(varied, label="Reroll", user=h.alice)
    await again.wait_original(lambda m: bool(images_in(m)), timeout=10)
    await h.settle()
    assert VARIATION_DIRECTIVE in (h.api.requests[2].prompt or "")
    assert h.api.requests[2].images == h.api.requests[1].images
    assert await h.balance(h.alice) == 700
    await assert_ledger_consistent(h.app.db)


async def test_deleting_one_image_of_a_batch_keeps_the_others(rich: Harness) -> None:
    h = rich
    rec = await batch(h, 3)
    message = await shown(rec, 3)
    await h.settle()
    ask = await h.fake.click(message, label="Delete 2", user=h.alice)
    question = await ask.wait_original()
    confirm = await h.fake.click(question, label="Delete for good", user=h.alice)
    await confirm.wait_original(lambda m: "deleted" in m.content)
    await h.fake.wait_for(lambda: len(images_in(message)) == 2, timeout=10)
    assert len(message.embeds) == 2
    assert [row["components"][0]["label"] for row in message.components] == [
        "Reroll 1", "Reroll 3",
    ]  # fmt: skip
    assert await h.rows("images") == 2
    # What is left still works.
    again = await h.fake.click(message, label="Reroll 3", user=h.alice)
    await again.wait_original(lambda m: bool(images_in(m)), timeout=10)
    await h.settle()
    assert await h.balance(h.alice) == 600
    await assert_ledger_consistent(h.app.db)


async def test_help_lists_batches_and_variations_with_this_servers_prices(
    rich: Harness,
) -> None:
    h = rich
    cost = await h.fake.slash(
        "settings set", {"setting": "generation_cost", "value": "40"}, user=h.mod
    )
    await cost.wait_original()
    rec = await h.fake.slash("help", {}, user=h.alice)
    text = (await rec.wait_original()).embed_text()
    assert "count" in text and "1 to 4" in text and "40 coins" in text
    assert "Variations" in text
    other = await h.fake.slash("help", {}, user=h.owner2, guild=h.other)
    assert "100 coins" in (await other.wait_original()).embed_text()


async def test_spanish_members_read_batches_in_spanish(rich: Harness) -> None:
    h = rich
    rec = await h.fake.slash(
        "generate", {"prompt": "x", "count": 9}, user=h.alice, validate=False, locale="es-ES"
    )
    assert "imágenes a la vez" in (await rec.wait_original()).content


async def test_a_moderator_deleting_a_batch_image_from_the_log_keeps_the_others(
    rich: Harness,
) -> None:
    h = rich
    fake = h.fake
    log_channel = fake.add_channel(h.guild, "mod-log")
    rec = await fake.slash(
        "settings set", {"setting": "mod_log_channel_id", "value": f"<#{log_channel.id}>"},
        user=h.mod,
    )  # fmt: skip
    await rec.wait_original()
    message = await shown(await batch(h, 2), 2)
    await h.settle()
    posts = await fake.wait_for(
        lambda: (
            [m for m in fake.channel_log if m.channel_id == log_channel.id and m.buttons()]
            if len([m for m in fake.channel_log if m.channel_id == log_channel.id]) >= 2
            else None
        ),
        timeout=10,
    )
    click = await fake.click(posts[0], label="Delete", user=h.mod)
    await click.wait_callback()
    await fake.wait_for(lambda: len(images_in(message)) == 1, timeout=10)
    assert not message.deleted and len(message.components) == 1
    assert await h.rows("images") == 1
    # The second one goes too: now the message has nothing left to show and goes.
    click = await fake.click(posts[1], label="Delete", user=h.mod)
    await click.wait_callback()
    await fake.wait_for(lambda: message.deleted, timeout=10)
    assert await h.rows("images") == 0
    await assert_ledger_consistent(h.app.db)


async def test_the_daily_image_cap_counts_every_image_of_a_batch(scoped: Harness) -> None:
    h = scoped
    rec = await h.fake.slash(
        "settings set", {"setting": "daily_image_cap", "value": "3"}, user=h.mod
    )
    await rec.wait_original()
    await shown(await batch(h, 2), 2)
    await h.settle()
    # One image left today: a batch of two is refused whole (nothing charged, no job).
    jobs, images = await h.rows("jobs"), await h.rows("images")
    refused = await refusal(await batch(h, 2, user=h.bob))
    assert "images for today" in refused.content
    assert (await h.rows("jobs"), await h.rows("images")) == (jobs, images)
    assert await ledger_kinds(h) == {"GENERATION": 2}
    assert await h.balance(h.bob) == 1000
    # The last one fits.
    last = await h.fake.slash("generate", {"prompt": "the last pear"}, user=h.bob)
    await last.wait_original(lambda m: bool(images_in(m)), timeout=10)
    await h.settle()
    assert await ledger_kinds(h) == {"GENERATION": 3}
    # Other Club has no cap: a full batch there.
    await shown(await batch(h, 4, user=h.owner2, guild=h.other), 4)
    await h.settle()
    assert await ledger_kinds(h) == {"GENERATION": 7}
    await assert_ledger_consistent(h.app.db)
