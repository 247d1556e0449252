"""Content controls end to end: the blocklist (accents, case, look-alike letters, spelled-out
words; on prompts and Edit instructions, before any charge, with a neutral message), bad
patterns refused, a blocked member (generate and upload, until an end time), the moderation
log with a moderator deleting from it, a log channel the bot cannot post in, results only in
age-restricted channels, and the audit list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import discord
import pytest

from tests.cogs.conftest import Harness, outcome, png
from tests.fakes.discord_server import FakeMessage, FakeUser

SEND_MESSAGES = discord.Permissions(send_messages=True).value
ATTACH_FILES = discord.Permissions(attach_files=True).value


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


async def settings(harness: Harness, sub: str, options: Mapping[str, object], **kw: object) -> str:
    kw.setdefault("user", harness.mod)
    rec = await harness.fake.slash(f"settings {sub}", options, **kw)  # type: ignore[arg-type]
    message = await rec.wait_original()
    assert message.ephemeral, message
    return message.content + message.embed_text()


async def generate(
    harness: Harness, prompt: str, user: FakeUser | None = None, **kw: object
) -> FakeMessage:
    rec = await harness.fake.slash("generate", {"prompt": prompt}, user=user or harness.alice,
                                   **kw)  # type: ignore[arg-type]  # fmt: skip
    message = await outcome(rec)
    await harness.settle()  # an image is shown first and stored meanwhile
    return message


@pytest.mark.parametrize(
    "prompt",
    [
        "a BANANA-BOMB on a table",  # case and punctuation
        "a bánáná bömb on a table",  # accents
        "a bаnаnа bоmb",  # Cyrillic а and о
        "a ｂａｎａｎａ ｂｏｍｂ",  # full-width letters
        "a b a n a n a bomb",  # spelled out
        "a banana\u200b bomb",  # a zero-width space
        "a ban\u3164ana bomb",  # Hangul filler inside a word
        "a ban\uffa0ana bomb",  # half-width Hangul filler
        "a ʙᴀɴᴀɴᴀ ʙᴏᴍʙ",  # small capitals
    ],
)
async def test_blocklist_refuses_prompts_in_any_disguise_before_charge(
    harness: Harness, prompt: str
) -> None:
    text = await settings(harness, "blocklist add", {"entry": "Banana Bomb"})
    assert "Added to the blocklist: `banana bomb` (word)" in text
    await generate(harness, "warm up", user=harness.alice)  # the account and wallet exist
    before = await harness.counts()
    refused = await generate(harness, prompt)
    assert refused.ephemeral and "uses words this server doesn't allow" in refused.content
    assert "bomb" not in refused.content.lower() and "banana" not in refused.content.lower()
    assert await harness.counts() == before
    assert len(harness.api.requests) == 1  # never sent to Google


async def test_blocklist_patterns_words_and_edit_instructions(harness: Harness) -> None:
    await settings(harness, "blocklist add", {"entry": r"gr[e3]+n\s*goblin", "pattern": True})
    await settings(harness, "blocklist add", {"entry": "ass"})
    assert has_image(await generate(harness, "a class act with a bass guitar"))  # whole words
    refused = await generate(harness, "a GREEEN  goblin")
    assert "doesn't allow" in refused.content
    # The other server's list is its own.
    rec = await harness.fake.slash("generate", {"prompt": "a green goblin"}, user=harness.alice,
                                   guild=harness.other)  # fmt: skip
    assert has_image(await rec.wait_original(has_image, timeout=15))
    await harness.settle()
    # An Edit's instruction is checked too, before any charge.
    message = await generate(harness, "a garden")
    balance = await harness.balance(harness.alice)
    click = await harness.fake.click(message, label="Edit", user=harness.alice)
    modal = await click.wait_modal()
    submit = await harness.fake.submit_modal(modal, {"instruction": "add a grеen goblin"},
                                             user=harness.alice)  # fmt: skip
    answer = await outcome(submit)
    assert answer.ephemeral and "doesn't allow" in answer.content
    assert await harness.balance(harness.alice) == balance
    listed = await settings(harness, "blocklist list", {})
    assert "gr[e3]+n\\s*goblin" in listed and "ass" in listed
    removed = await settings(harness, "blocklist remove", {"entry": "ASS"})
    assert "Removed from the blocklist: `ass`" in removed


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        ("(a)\\1", "isn't valid"),  # back-references don't exist in RE2
        ("(?=bad)", "isn't valid"),  # nor look-arounds
        ("[unclosed", "isn't valid"),
        ("((a{100}){100}){100}", "too costly"),
        ("x*", "matches every prompt"),
        ("a" * 201, "at most 200"),
    ],
)
async def test_bad_patterns_are_refused_and_change_nothing(
    harness: Harness, entry: str, phrase: str
) -> None:
    await settings(harness, "show", {})
    before = await harness.counts()
    before_list = await harness.rows("guild_blocklist")
    text = await settings(harness, "blocklist add", {"entry": entry, "pattern": True},
                          validate=len(entry) <= 200)  # fmt: skip
    assert phrase in text
    assert await harness.counts() == before
    assert await harness.rows("guild_blocklist") == before_list
    assert await harness.rows("moderation_actions") == 0


async def test_catastrophic_looking_patterns_run_in_linear_time(harness: Harness) -> None:
    # (x+x+)+y backtracks exponentially in Python's re; RE2 has no backtracking.
    await settings(harness, "blocklist add", {"entry": "(x+x+)+y", "pattern": True})
    assert has_image(await generate(harness, "x" * 150))


async def test_a_blocked_member_can_neither_generate_nor_upload_until_the_end(
    harness: Harness,
) -> None:
    text = await settings(harness, "block", {"member": harness.alice, "reason": "spam",
                                             "duration": "2d"})  # fmt: skip
    assert f"<@{harness.alice.id}> can't make or upload images here until" in text
    refused = await generate(harness, "a cat")
    assert "can't make or upload images in this server until" in refused.content
    assert "Reason: spam" in refused.content
    rec = await harness.fake.slash("upload", {"image": harness.fake.upload(png(), "a.png")},
                                   user=harness.alice)  # fmt: skip
    assert "can't make or upload images" in (await rec.wait_original()).content
    assert await harness.rows("images") == 0
    # Elsewhere they are welcome.
    rec = await harness.fake.slash("generate", {"prompt": "there"}, user=harness.alice,
                                   guild=harness.other)  # fmt: skip
    assert has_image(await rec.wait_original(has_image, timeout=15))
    await harness.settle()
    listed = await settings(harness, "blocked", {})
    assert f"<@{harness.alice.id}>" in listed and "spam" in listed
    # Two days later the block has ended by itself.
    later = datetime.now(UTC) + timedelta(days=2, minutes=1)
    harness.app.moderation.clock = lambda: later
    assert has_image(await generate(harness, "back again"))
    # A block without an end, lifted by hand.
    await settings(harness, "block", {"member": harness.bob, "reason": "rude"})
    assert "Reason: rude" in (await generate(harness, "x", user=harness.bob)).content
    text = await settings(harness, "unblock", {"member": harness.bob, "reason": "apologised"})
    assert "can make and upload images here again" in text
    assert has_image(await generate(harness, "a dog", user=harness.bob))


async def test_moderation_commands_are_for_moderators_with_clear_refusals(
    harness: Harness,
) -> None:
    await settings(harness, "show", {})
    before = await harness.counts()
    for sub, options in (
        ("blocklist add", {"entry": "x"}),
        ("block", {"member": harness.bob, "reason": "x"}),
        ("audit", {}),
    ):
        text = await settings(harness, sub, options, user=harness.alice)
        assert "Only this server's moderators" in text
    assert "isn't a duration" in await settings(
        harness, "block", {"member": harness.bob, "reason": "x", "duration": "forever"}
    )
    assert "can't block yourself" in await settings(
        harness, "block", {"member": harness.mod, "reason": "x"}
    )
    assert "isn't blocked here" in await settings(harness, "unblock", {"member": harness.bob})
    assert "isn't on the blocklist" in await settings(harness, "blocklist remove",
                                                      {"entry": "nothing"})  # fmt: skip
    assert await harness.counts() == before
    assert await harness.rows("moderation_actions") == 0


async def test_moderation_log_posts_every_image_and_a_moderator_deletes_it_everywhere(
    harness: Harness,
) -> None:
    fake = harness.fake
    log_channel = fake.add_channel(harness.guild, "mod-log")
    text = await settings(harness, "set", {"setting": "mod_log_channel_id",
                                           "value": f"<#{log_channel.id}>"})  # fmt: skip
    assert f"Moderation log channel is now <#{log_channel.id}>" in text
    result = await generate(harness, "a suspicious banana")
    post = await fake.wait_for_message(
        lambda m: m.channel_id == log_channel.id and bool(m.buttons()), timeout=10
    )
    shown = post.embed_text()
    assert f"<@{harness.alice.id}>" in shown and "a suspicious banana" in shown
    assert "gemini-nano-banana-2.1 1K" in shown and "100 coins · $0.035" in shown
    assert post.filenames and [b["label"] for b in post.buttons()] == ["Delete"]
    # Uploads are logged too.
    rec = await fake.slash("upload", {"image": fake.upload(png(), "holiday.png"),
                                      "title": "my holiday"}, user=harness.bob)  # fmt: skip
    await rec.wait_original(lambda m: bool(m.embeds), timeout=10)
    upload_post = await fake.wait_for_message(
        lambda m: m.channel_id == log_channel.id and "my holiday" in m.embed_text(), timeout=10
    )
    assert f"<@{harness.bob.id}>" in upload_post.embed_text()
    # The owner may not use the log's Delete; nor may another server's moderator.
    click = await fake.click(post, label="Delete", user=harness.alice)
    assert "Only this server's moderators" in (await click.wait_original()).content
    owner_id = await harness.user_id(harness.alice)
    image = (await harness.app.image_repo.list_by_user(owner_id)).items[0]
    keys = [image.storage_key, image.thumbnail_key]
    objects = await harness.objects()
    assert all(key in objects for key in keys)
    # A moderator deletes it: row, objects and the public result message go; the log says who.
    click = await fake.click(post, label="Delete", user=harness.mod)
    await click.wait_callback()
    assert await harness.app.image_repo.get(image.id) is None
    assert not set(keys) & set(await harness.objects())
    await fake.wait_for(lambda: result.deleted)
    edited = fake.messages[post.id]
    assert f"Deleted by <@{harness.mod.id}>" in edited.content
    assert not edited.filenames and not edited.buttons()
    # Recorded: who, what, when.
    audit = await settings(harness, "audit", {})
    assert f"<@{harness.mod.id}> deleted image `{image.id[:8]}` of <@{harness.alice.id}>" in audit
    # The gallery no longer has it.
    rec = await fake.slash("gallery", {}, user=harness.alice)
    assert image.short_id not in (await rec.wait_original()).embed_text()


async def test_a_log_channel_the_bot_cannot_post_in_is_refused(harness: Harness) -> None:
    fake = harness.fake
    hidden = fake.add_channel(harness.guild, "secret")
    fake.set_channel_overwrite(hidden, fake.bot_role(harness.guild), deny=SEND_MESSAGES)
    no_files = fake.add_channel(harness.guild, "text-only")
    fake.set_channel_overwrite(no_files, fake.bot_role(harness.guild), deny=ATTACH_FILES)
    await settings(harness, "show", {})
    before = await harness.counts()
    text = await settings(harness, "set", {"setting": "mod_log_channel_id",
                                           "value": f"<#{hidden.id}>"})  # fmt: skip
    # Without Send Messages, Discord takes embeds and files away too.
    assert f"I can't post in <#{hidden.id}>: I'm missing Send Messages, Embed Links" in text
    text = await settings(harness, "set", {"setting": "mod_log_channel_id",
                                           "value": f"<#{no_files.id}>"})  # fmt: skip
    assert "I'm missing Attach Files there" in text
    text = await settings(harness, "set", {"setting": "mod_log_channel_id",
                                           "value": "<#123456789012345678>"})  # fmt: skip
    assert "isn't a channel of this server" in text
    assert await harness.counts() == before
    # A log channel that loses the bot's permission later: images still work, the post is
    # refused by Discord and logged.
    ok = fake.add_channel(harness.guild, "mod-log")
    await settings(harness, "set", {"setting": "mod_log_channel_id", "value": f"<#{ok.id}>"})
    fake.set_channel_overwrite(ok, fake.bot_role(harness.guild), deny=SEND_MESSAGES)
    assert has_image(await generate(harness, "still fine"))
    assert not fake.channel_messages(ok)


async def test_results_only_in_age_restricted_channels_when_the_owner_asks(
    harness: Harness,
) -> None:
    fake = harness.fake
    adults = fake.add_channel(harness.guild, "after-dark", nsfw=True)
    text = await settings(harness, "set", {"setting": "nsfw_only", "value": "yes"})
    assert "Images only in age-restricted channels is now yes" in text
    refused = await generate(harness, "a cat")
    assert "only in age-restricted channels" in refused.content
    rec = await fake.slash("upload", {"image": fake.upload(png(), "a.png")}, user=harness.alice)
    assert "only in age-restricted channels" in (await rec.wait_original()).content
    assert await harness.rows("images") == 0
    assert has_image(await generate(harness, "a cat", channel=adults))


async def test_audit_lists_every_moderation_action(harness: Harness) -> None:
    await settings(harness, "blocklist add", {"entry": "foo"})
    await settings(harness, "blocklist remove", {"entry": "foo"})
    await settings(harness, "block", {"member": harness.bob, "reason": "flooding"})
    await settings(harness, "unblock", {"member": harness.bob, "reason": "calmer now"})
    audit = await settings(harness, "audit", {})
    mod = f"<@{harness.mod.id}>"
    lines = audit.splitlines()
    assert f"{mod} unblocked <@{harness.bob.id}> · reason: calmer now" in lines[1]
    assert f"{mod} blocked <@{harness.bob.id}> · reason: flooding" in lines[2]
    assert f"{mod} removed `foo` from the blocklist" in lines[3]
    assert f"{mod} added `foo` to the blocklist" in lines[4]
    # Another server's audit is its own.
    other = await settings(harness, "audit", {}, user=harness.owner2, guild=harness.other)
    assert "No moderation action yet" in other
