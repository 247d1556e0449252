"""Start-up and shutdown: persistent buttons, crash recovery, command sync, graceful close."""

from __future__ import annotations

import asyncio

import pytest

from bot.check import run_checks
from bot.config import load_settings
from storage.models import ImageStatus
from tests.cogs.conftest import Harness
from tests.cogs.test_generate import has_image
from tests.storage.helpers import assert_ledger_consistent


async def test_buttons_keep_working_after_a_restart(harness: Harness) -> None:
    rec = await harness.fake.slash("generate", {"prompt": "a lighthouse"}, user=harness.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    await harness.stop_bot()
    await harness.start_bot()
    click = await harness.fake.click(message, label="Reroll", user=harness.alice)
    await click.wait_original(has_image, timeout=10)
    await harness.settle()
    assert harness.api.requests[-1].prompt == "a lighthouse"
    stranger = await harness.fake.click(message, label="Delete", user=harness.bob)
    assert "isn't yours" in (await stranger.wait_original()).content


async def test_jobs_left_by_a_crash_are_refunded_at_start(harness: Harness) -> None:
    app = harness.app
    payer = await harness.payer(harness.alice)
    channel = harness.guild.default_channel
    context = {"context": {"channel_id": channel.id, "guild_id": harness.guild.id}}
    pending, _ = await app.image_repo.reserve_generation(
        user_id=payer.user_id, wallet_id=payer.wallet_id, cost=100, prompt="a castle",
        metadata=context, guild_id=harness.guild.id,
    )  # fmt: skip
    await app.image_repo.reserve_generation(
        user_id=payer.user_id, wallet_id=payer.wallet_id, cost=100, prompt="b"
    )
    await app.image_repo.update_status(pending.id, ImageStatus.PROCESSING)
    # An orphan object as a crash between put and complete would leave.
    await app.store.put("images/x/1-orphan-abc123.png", b"x", "image/png")
    await harness.stop_bot()
    bot = await harness.start_bot()
    assert await harness.balance(harness.alice) == 300
    assert await bot.image_repo.list_unfinished() == []
    assert await harness.objects() == []
    await assert_ledger_consistent(bot.db)
    # The member hears about it where they asked (the job without a channel stays silent).
    notice = await harness.fake.wait_for_message(
        lambda m: "interrupted by a bot restart" in m.content, channel=channel
    )
    assert f"<@{harness.alice.id}>" in notice.content and "a castle" in notice.content
    assert "refunded 100 coins" in notice.content


async def test_global_sync_only_when_commands_change(harness: Harness) -> None:
    await harness.stop_bot()
    before = len(harness.fake.sync_calls)
    bot = await harness.start_bot(discord_guild_ids=[])
    global_syncs = [c for c in harness.fake.sync_calls[before:] if c[0] is None]
    assert len(global_syncs) == 1 and {c["name"] for c in global_syncs[0][1]} >= {"generate"}
    assert await bot.db.get_state("commands_hash") == await bot.commands_hash()
    await harness.stop_bot()
    before = len(harness.fake.sync_calls)
    await harness.start_bot(discord_guild_ids=[])
    assert harness.fake.sync_calls[before:] == []


async def test_close_finishes_running_jobs_and_refunds_queued_ones(harness: Harness) -> None:
    harness.api.latency = 0.4
    people = [harness.alice, harness.bob, harness.mod, harness.owner2, harness.alice]
    recs = [
        await harness.fake.slash("generate", {"prompt": f"p{n}"}, user=user)
        for n, user in enumerate(people)
    ]
    for rec in recs:
        await rec.wait_callback()
    # Four taken by workers (two calling the API, two waiting for a slot), one queued.
    app = harness.app
    for _ in range(200):
        if app.generation.running == 4 and app.generation.queue_length == 1:
            break
        await asyncio.sleep(0.02)
    await harness.stop_bot()
    # Which job waited depends on whose reservation landed last (answers come first).
    for rec in recs:
        await rec.wait_for(
            lambda r: bool(r.followups) or (r.original is not None and has_image(r.original)),
            timeout=10,
        )
    shown = [rec for rec in recs if rec.original is not None and has_image(rec.original)]
    refused = [rec for rec in recs if rec.followups]
    # The two calling the API finish; the two waiting for a slot and the queued one (none of
    # which called the API) are refunded.
    assert len(shown) == 2 and len(refused) == 3
    for rec in refused:
        assert "restarted before your image was made" in rec.followups[0].content
        assert "refunded 100 coins" in rec.followups[0].content
    bot = await harness.start_bot()
    total = sum([await harness.balance(user) for user in people[:4]])
    assert total == 4 * 300 - 2 * 100
    assert await bot.image_repo.list_unfinished() == []
    await assert_ledger_consistent(app.db if app.db.is_open else bot.db)


async def test_close_past_deadline_refunds_the_running_job(harness: Harness) -> None:
    harness.api.latency = 30
    rec = await harness.fake.slash("generate", {"prompt": "slow"}, user=harness.alice)
    await rec.wait_callback()
    await asyncio.sleep(0.1)
    harness.app.shutdown_deadline = 0.2
    await harness.stop_bot()
    harness.api.latency = 0
    bot = await harness.start_bot()
    assert await harness.balance(harness.alice) == 300
    assert await bot.image_repo.list_unfinished() == []


async def test_check_reports_every_part(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_checks(harness.settings)
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    assert [line.split()[1] for line in out] == [
        "configuration:", "model:", "database:", "object", "discord", "gemini", "web:",
    ]  # fmt: skip
    assert all(line.startswith("OK") for line in out)
    assert "gemini-2.5-flash-image (Nano Banana, default): no sizes, 100 coins" in out[1]
    broken = harness.settings.model_copy(
        update={"nanobanana_model": "imagen-x", "nanobanana_models": ["imagen-x"]}
    )
    assert await run_checks(broken) == 1
    assert "NANOBANANA_MODEL" in capsys.readouterr().out
    assert "test-key" not in "\n".join(out)


async def test_check_lists_every_model_with_its_sizes_and_costs(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        **{
            **harness.settings.model_dump(),
            "discord_token": "fake-bot-token",
            "gemini_api_key": "test-key",
            "nanobanana_models": "gemini-3-pro-image-preview,gemini-3.1-flash-image-preview",
            "generation_costs": "gemini-3-pro-image-preview=150,gemini-3-pro-image-preview:4K=300",
        }
    )
    assert await run_checks(settings) == 0
    out = capsys.readouterr().out
    assert (
        "gemini-3-pro-image-preview (Nano Banana Pro, choice): sizes 1K=150, 2K=150, 4K=300 "
        "coins (default 1K)" in out
    )
    assert "gemini-3.1-flash-image-preview (Nano Banana 2, choice): sizes 512=100" in out
    assert "14 ratios, up to 14 reference images" in out
    assert "model(s) gemini-2.5-flash-image, gemini-3-pro-image-preview, " in out


async def test_edit_modal_opened_before_a_restart_still_works(harness: Harness) -> None:
    rec = await harness.fake.slash("generate", {"prompt": "a fox"}, user=harness.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    click = await harness.fake.click(message, label="Edit", user=harness.alice)
    modal = await click.wait_modal()
    await harness.stop_bot()
    await harness.start_bot()
    submit = await harness.fake.submit_modal(modal, {"instruction": "in winter"},
                                             user=harness.alice)  # fmt: skip
    await submit.wait_original(has_image, timeout=10)
    await harness.settle()
    assert harness.api.requests[-1].prompt == "in winter"
