"""The bot against Discord's own rules, as the strict fake enforces them: interaction
deadlines, rate limits, upload limits and message limits. (That every request the bot sends
is valid against Discord's spec is checked in every test; see tests/conftest.py.)"""

from __future__ import annotations

from tests.cogs.conftest import Harness
from tests.fakes.discord_models import FakeMessage
from tests.fakes.discord_server import ACK_DEADLINE, TOKEN_LIFETIME
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


# ------------------------------------------------------------------------------ deadlines


async def test_an_interaction_that_arrives_too_late_costs_nothing(harness: Harness) -> None:
    """Discord answers 10062 to a first response after 3 s: the coins reserved for the job
    go back, and no job is left running."""
    rec = await harness.fake.slash(
        "generate", {"prompt": "late banana"}, user=harness.alice, age=ACK_DEADLINE + 0.5
    )
    await rec.wait_for(lambda r: any(e.code == 10062 for e in r.errors), timeout=10)
    assert not rec.responded
    await harness.fake.wait_for(
        lambda: len(rec.errors) >= 2, timeout=10
    )  # the defer, then the error report: both too late
    assert await harness.balance(harness.alice) == 300
    assert await harness.unfinished_jobs() == []
    assert harness.api.requests == []  # the model was never called for it
    await assert_ledger_consistent(harness.app.db)


async def test_a_result_after_the_token_expired_goes_to_the_channel(harness: Harness) -> None:
    """Followups and edits with a token older than 15 minutes get 401 50027: the finished
    image is posted in the channel instead, mentioning the member, with its buttons."""
    harness.api.latency = 1.0  # the job is still running when the test moves the clock
    rec = await harness.fake.slash("generate", {"prompt": "slow banana"}, user=harness.alice)
    await rec.wait_callback()
    harness.fake.clock.advance(TOKEN_LIFETIME + 1)
    posted = await harness.fake.wait_for_message(
        has_image, channel=harness.guild.default_channel, timeout=10
    )
    assert f"<@{harness.alice.id}>" in posted.content and posted.buttons()
    assert (401, 50027) in [(e.status, e.code) for e in rec.errors]
    assert await harness.balance(harness.alice) == 200


async def test_a_failure_after_the_token_expired_is_told_in_the_channel(
    harness: Harness,
) -> None:
    harness.api.latency = 1.0
    harness.api.default = Behaviour(Mode.SERVER_ERROR)
    rec = await harness.fake.slash("generate", {"prompt": "doomed"}, user=harness.alice)
    await rec.wait_callback()
    harness.fake.clock.advance(TOKEN_LIFETIME + 1)
    notice = await harness.fake.wait_for_message(
        lambda m: "refunded" in m.content, channel=harness.guild.default_channel, timeout=10
    )
    assert f"<@{harness.alice.id}>" in notice.content
    assert await harness.balance(harness.alice) == 300


# ------------------------------------------------------------------------------ rate limits


async def test_a_rate_limited_channel_delays_restart_notices_but_loses_none(
    harness: Harness,
) -> None:
    """Another process of the bot used up the channel's bucket: the restarted bot gets 429
    with retry_after, waits as the headers say, and every member still hears about their
    interrupted job."""
    fake = harness.fake
    channel = harness.guild.default_channel
    users = [harness.alice, harness.bob]
    for index, member in enumerate(users):
        await harness.crashed_job(member, f"castle {index}")
    await harness.stop_bot()
    fake.ratelimits.exhaust(
        "POST", "/channels/{channel_id}/messages", {"channel_id": str(channel.id)}, 0.5
    )
    await harness.start_bot()
    notice = await fake.wait_for_message(
        lambda m: "interrupted by a bot restart" in m.content, channel=channel, timeout=15
    )
    assert all(f"<@{member.id}>" in notice.content for member in users)
    hits = [h for h in fake.ratelimits.hits if h.path.endswith(f"/channels/{channel.id}/messages")]
    assert hits and not hits[0].is_global and hits[0].retry_after == 0.5
    assert await harness.balance(harness.alice) == 300 and await harness.balance(harness.bob) == 300


async def test_the_global_rate_limit_is_ridden_out(harness: Harness) -> None:
    """With a global limit of one request a second, a restart (login, application info,
    command sync: back to back) gets global 429s; discord.py pauses every request as told,
    and the bot still comes up with its commands synced and answers."""
    fake = harness.fake
    await harness.stop_bot()
    fake.guild_commands.clear()
    fake.ratelimits.global_limit = 1
    await harness.start_bot()
    await fake.wait_for(lambda: "generate" in fake.commands(harness.guild), timeout=15)
    assert any(hit.is_global for hit in fake.ratelimits.hits)
    rec = await fake.slash("coins", {}, user=harness.alice)  # interactions are not bound by it
    assert "300" in (await rec.wait_original(timeout=10)).text


async def test_a_tight_interaction_bucket_still_delivers_the_image(harness: Harness) -> None:
    """One webhook request per half second per interaction: status edits and the final
    image wait their turn (discord.py reads the headers), nothing is dropped."""
    harness.fake.ratelimits.set_rule(
        "*", "/webhooks/{webhook_id}/{webhook_token}*", 1, 0.5, ("webhook_id", "webhook_token")
    )
    harness.api.latency = 0.3
    recs = [
        await harness.fake.slash("generate", {"prompt": f"queued {n}"}, user=user)
        for n, user in enumerate((harness.alice, harness.bob, harness.alice))
    ]
    for rec in recs:
        await rec.wait_original(has_image, timeout=20)
        await harness.settle()
    assert harness.fake.ratelimits.exhausted_answers > 0


# ------------------------------------------------------------------------------ limits


async def test_results_are_shrunk_below_a_tiny_upload_limit(harness: Harness) -> None:
    """Discord answers 413 40005 to a file over the interaction's attachment_size_limit (the
    fake too, and fails the test): the bot sends a smaller copy instead."""
    harness.api.image_size = 1024
    harness.fake.attachment_size_limit = 30_000
    rec = await harness.fake.slash("generate", {"prompt": "big banana"}, user=harness.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    assert message.attachments[0].size <= 30_000
    opened = await harness.fake.slash("gallery", {}, user=harness.alice)
    page = await opened.wait_original(lambda m: bool(m.attachments), timeout=10)
    assert page.attachments[0].size <= 30_000
    select = page.selects()[0]
    shown = await harness.fake.select(page, select["custom_id"], [select["options"][0]["value"]])
    (image,) = (await shown.wait_original(lambda m: bool(m.attachments), timeout=10)).attachments
    assert image.size <= 30_000
    # The name says what the bytes are (the fake sniffs them): a shrunk copy is not a .png.
    assert (
        image.filename.rsplit(".", 1)[1]
        == {"image/jpeg": "jpg", "image/webp": "webp", "image/png": "png"}[str(image.content_type)]
    )


async def test_coins_history_with_long_grant_reasons_fits_in_an_embed_field(
    harness: Harness,
) -> None:
    """Five grants with 200-character reasons: the history stays within Discord's 1024
    characters per embed field (the whole /coins answer used to be refused)."""
    for n in range(5):
        rec = await harness.fake.slash(
            "grant",
            {"user": harness.alice, "amount": 1, "reason": f"{n}" + "r" * 199},
            user=harness.mod,
        )
        await rec.wait_original()
    rec = await harness.fake.slash("coins", {}, user=harness.alice)
    message = await rec.wait_original()
    history = message.embeds[0]["fields"][-1]["value"]
    assert len(history) <= 1024 and history.count("\n") == 4
    assert "305" in message.text


async def test_long_prompts_fit_every_message(harness: Harness) -> None:
    """The longest prompt the settings allow fits in the queue status, the result embed, the
    gallery menu and the opened image (each has its own Discord limit)."""
    prompt = "a" * (harness.settings.max_prompt_chars - 1) + "z"
    rec = await harness.fake.slash("generate", {"prompt": prompt}, user=harness.alice)
    await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    gallery = await harness.fake.slash("gallery", {}, user=harness.alice)
    page = await gallery.wait_original(lambda m: bool(m.selects()), timeout=10)
    image_id = page.selects()[0]["options"][0]["value"]
    opened = await harness.fake.select(page, page.selects()[0]["custom_id"], [image_id])
    await opened.wait_original(lambda m: bool(m.embeds), timeout=10)
