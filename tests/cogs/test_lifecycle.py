"""Start-up and shutdown: persistent buttons, crash recovery, command sync, graceful close."""

from __future__ import annotations

import asyncio

import pytest

from bot.check import run_checks
from bot.config import load_settings
from tests.cogs.conftest import Harness
from tests.cogs.test_generate import has_image
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until


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
    channel = harness.guild.default_channel
    await harness.crashed_job(harness.alice, "a castle", processing=True)
    await harness.crashed_job(harness.alice, "b", told=False)
    # An orphan object as a crash between put and complete would leave.
    await app.store.put("images/x/1-orphan-abc123.png", b"x", "image/png")
    await harness.stop_bot()
    bot = await harness.start_bot()
    assert await harness.balance(harness.alice) == 300
    assert await harness.unfinished_jobs() == []
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
    harness.api.gate = gate = asyncio.Event()  # the API answers when the test says
    people = [harness.alice, harness.bob, harness.mod, harness.owner2, harness.alice]
    recs = [
        await harness.fake.slash("generate", {"prompt": f"p{n}"}, user=user)
        for n, user in enumerate(people)
    ]
    for rec in recs:
        await rec.wait_callback()
    # Four taken by workers (two calling the API, two waiting for a slot), one queued.
    app = harness.app
    await harness.api.received(2)
    await until(lambda: app.generation.running == 4 and app.generation.queue_length == 1)
    stopping = asyncio.create_task(harness.stop_bot())
    # The stop takes the queued job off the queue (refunded) at once; then the two calling
    # the API get their answers and finish, and the two workers waiting for their slots find
    # the bot stopping and refund theirs (they never called the API).
    await until(lambda: app.generation.queue_length == 0, "the queued job refunded")
    gate.set()
    await stopping
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
    assert await harness.unfinished_jobs() == []
    await assert_ledger_consistent(app.db if app.db.is_open else bot.db)


async def test_close_past_deadline_refunds_the_running_job(harness: Harness) -> None:
    harness.api.latency = 30
    rec = await harness.fake.slash("generate", {"prompt": "slow"}, user=harness.alice)
    await rec.wait_callback()
    await harness.api.received(1)  # running: the API holds it
    harness.app.shutdown_deadline = 0.2
    await harness.stop_bot()
    harness.api.latency = 0
    await harness.start_bot()
    assert await harness.balance(harness.alice) == 300
    assert await harness.unfinished_jobs() == []


async def test_check_reports_every_part(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_checks(harness.settings)
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    assert [line.split()[1] for line in out] == [
        "configuration:", "database:", "object", "discord", "gemini", "models:", "model:", "web:",
    ]  # fmt: skip
    assert all(line.startswith("OK") for line in out)
    assert out[5].endswith(
        "the key can use 4 image model(s): gemini-nano-banana-2.1 (Nano Banana 2.1), "
        "gemini-3.1-flash-image (Nano Banana 2), gemini-3.1-flash-lite-image (Nano Banana 2 "
        "Lite), gemini-3-pro-image (Nano Banana Pro)"
    )
    assert out[6] == (
        "OK   model: gemini-nano-banana-2.1 (Nano Banana 2.1, default, chosen by auto): sizes "
        "1K=100, 2K=100, 4K=100 coins (default 1K); 14 ratios, up to 14 reference images; "
        "thinking medium"
    )
    assert "test-key" not in "\n".join(out)


async def check_lines(harness: Harness, capsys: pytest.CaptureFixture[str],
                      **overrides: object) -> tuple[int, list[str]]:  # fmt: skip
    settings = load_settings(
        **{**harness.settings.model_dump(), "discord_token": "fake-bot-token",
           "gemini_api_key": "test-key", **overrides}
    )  # fmt: skip
    capsys.readouterr()
    code = await run_checks(settings)
    out = capsys.readouterr().out.splitlines()
    return code, [line for line in out if line.split()[1] in ("models:", "model:")]


async def test_check_says_what_happens_to_a_retired_id_in_the_settings(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = await check_lines(
        harness, capsys, nanobanana_model="gemini-3-pro-image-preview",
        generation_costs="gemini-3-pro-image-preview=150,gemini-3-pro-image-preview:4K=300",
    )  # fmt: skip
    assert code == 0, lines
    assert (
        "OK   model: gemini-3-pro-image (Nano Banana Pro, default): sizes 1K=150, 2K=150, "
        "4K=300 coins (default 1K)" in lines[1]
    )
    assert lines[2] == (
        "WARN model: Google shut down gemini-3-pro-image-preview (Nano Banana Pro (preview)) on "
        "2026-06-25: the bot uses its successor gemini-3-pro-image (Nano Banana Pro) instead; "
        "set it in your .env (or NANOBANANA_MODEL=auto) to silence this"
    )


async def test_check_flags_a_pinned_model_the_key_cannot_use_naming_its_successor(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.api.retire("gemini-3.1-flash-image")
    code, lines = await check_lines(harness, capsys, nanobanana_model="gemini-3.1-flash-image")
    assert code == 1
    assert lines[1] == (
        "FAIL model: gemini-3.1-flash-image (Nano Banana 2) is not in the API's models list "
        "for this key: requests for it are refused, free -> Google's recommended successor is "
        "gemini-nano-banana-2.1: set it, or NANOBANANA_MODEL=auto"
    )
    assert lines[2].startswith("FAIL model: no configured model can be used")
    # A model some process saw answer 404 is flagged the same way.
    await harness.app.models.model_gone("gemini-3-pro-image", "404 NOT_FOUND")
    code, lines = await check_lines(harness, capsys, nanobanana_model="gemini-3-pro-image")
    assert code == 1 and "gemini-3-pro-image (Nano Banana Pro) answered 404 NOT_FOUND" in lines[1]
    assert "set NANOBANANA_MODEL=auto, or a model `python -m bot check` lists" in lines[1]


async def test_check_with_a_key_that_has_no_image_model_or_no_models_list(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    for model, spec in list(harness.api.lineup.items()):
        if spec.image:
            harness.api.retire(model)
    code, lines = await check_lines(harness, capsys)
    assert code == 1
    assert lines[0].startswith("FAIL models: the key can use no image model -> enable billing")
    assert (
        lines[1].startswith("FAIL model: no configured model can be used")
        and "auto" not in (lines[1].split("->")[0])
    )
    # A proxy that forwards generateContent only: the lineup and 404s decide.
    code, out = await check_lines(harness, capsys, nanobanana_base_url=harness.api.base_url + "/p")
    assert code == 0
    assert any(line.startswith("OK   model: gemini-nano-banana-2.1") for line in out)


async def test_check_with_a_refused_key(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.api.expected_api_key = "the-real-key"
    settings = load_settings(**{**harness.settings.model_dump(), "discord_token": "t",
                                "gemini_api_key": "a-wrong-key"})  # fmt: skip
    assert await run_checks(settings) == 1
    out = capsys.readouterr().out
    assert "FAIL gemini key: the key was refused -> check GEMINI_API_KEY" in out
    assert "a-wrong-key" not in out


async def test_check_lists_every_model_with_its_sizes_and_costs(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = await check_lines(
        harness, capsys, nanobanana_models="gemini-3-pro-image,gemini-3.1-flash-image",
        generation_costs="gemini-3-pro-image=150,gemini-3-pro-image:4K=300",
    )  # fmt: skip
    assert code == 0
    out = "\n".join(lines)
    assert (
        "gemini-3-pro-image (Nano Banana Pro, choice): sizes 1K=150, 2K=150, 4K=300 "
        "coins (default 1K)" in out
    )
    assert "gemini-3.1-flash-image (Nano Banana 2, choice): sizes 512=100" in out
    assert "14 ratios, up to 14 reference images; thinking minimal" in out


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
