"""Conversations end to end (issue 22): reply to continue, edit threads with Undo, Branch and
Reroll, a restart in the middle, bad inputs, who may do what, and the money of every turn.

Through the real discord.py against the fake Discord (replies with `message_reference`,
MESSAGE_CREATE with mentions and without the privileged Message Content intent, threads per
Discord's OpenAPI spec) and the real client against the fake Gemini, which refuses a model
turn whose image lost its `thoughtSignature` (Nano Banana 2.1, today's default, requires them).
"""

from __future__ import annotations

from typing import Any

import discord
import pytest

from tests.cogs.conftest import Harness, png, refusal
from tests.fakes.discord_server import FakeChannel, FakeMessage, FakeUser
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent

CREATE_PUBLIC_THREADS = discord.Permissions(create_public_threads=True).value
SEND_IN_THREADS = discord.Permissions(send_messages_in_threads=True).value


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


def mention(h: Harness) -> str:
    return f"<@{h.fake.bot_user.id}>"


async def generated(h: Harness, prompt: str = "a banana astronaut") -> FakeMessage:
    """alice's /generate result, stored."""
    rec = await h.fake.slash("generate", {"prompt": prompt}, user=h.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await h.settle()
    return message


async def answer_to(h: Harness, message: FakeMessage, timeout: float = 15) -> FakeMessage:
    """The bot's reply to a member's message once it shows an image (or the failure)."""

    def found() -> FakeMessage | None:
        for m in h.fake.channel_messages(message.channel_id):
            ref = m.message_reference or {}
            ours = m.author.id == h.fake.bot_user.id and not m.deleted
            answers = str(ref.get("message_id")) == str(message.id)
            if ours and answers and (has_image(m) or "❌" in m.content):
                return m
        return None

    result = await h.fake.wait_for(found, timeout)
    await h.settle()
    assert isinstance(result, FakeMessage)
    return result


async def dm_text(h: Harness, user: FakeUser, timeout: float = 10) -> str:
    messages = await h.fake.wait_for(lambda: h.fake.dm_messages(user), timeout)
    return "\n".join(m.content for m in messages)


async def turn_rows(h: Harness) -> list[Any]:
    return list(
        await h.app.db.fetchall(
            "SELECT conversation_id, position, job_id, prompt, undone_at FROM conversation_turns "
            "ORDER BY created_at, position"
        )
    )


async def generations(h: Harness, user: FakeUser) -> list[Any]:
    uid = await h.user_id(user)
    return list(
        await h.app.db.fetchall(
            "SELECT kind, delta, job_id FROM coin_transactions WHERE user_id = ? "
            "AND kind IN ('GENERATION', 'REFUND') ORDER BY created_at",
            (uid,),
        )
    )


# Reply to continue -------------------------------------------------------------------------


async def test_a_reply_that_mentions_the_bot_continues_the_image(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    channel = h.guild.default_channel
    first_signatures = list(h.api.signatures)
    reference = png(40, 40, "green")
    reply = await h.fake.post_message(
        channel, h.alice, f"{mention(h)} give it a green hat",
        files=[h.fake.upload(reference, "hat.png")], reply_to=result,
    )  # fmt: skip
    answer = await answer_to(h, reply)
    assert has_image(answer) and "give it a green hat" in answer.embed_text()
    request = h.api.requests[-1]
    # The conversation so far, as the model expects it: the first prompt, the model's answer
    # with its signatures (from the stored turn), then the new prompt and its reference.
    assert [c["role"] for c in request.contents] == ["user", "model", "user"]
    assert request.prompt == "give it a green hat"
    assert request.signatures and set(request.signatures) <= set(first_signatures)
    assert len(request.images) == 1 and request.images[0][1][:8] == b"\x89PNG\r\n\x1a\n"
    assert await h.balance(h.alice) == 100  # two paid jobs of 100
    # A reply to that answer goes on: two earlier turns now.
    second = await h.fake.post_message(
        channel, h.alice, f"{mention(h)} now at night", reply_to=answer
    )
    await answer_to(h, second)
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model"] * 2 + ["user"]
    rows = await turn_rows(h)
    assert [r["position"] for r in rows] == [1, 2]
    assert len({r["conversation_id"] for r in rows}) == 1
    await assert_ledger_consistent(h.app.db)


async def test_a_reply_without_a_mention_is_not_read(harness: Harness) -> None:
    """Without the privileged intent Discord sends such a message empty: the bot does
    nothing (and charges nothing)."""
    h = harness
    result = await generated(h)
    await h.fake.post_message(
        h.guild.default_channel, h.alice, "make it blue", reply_to=result, ping=False
    )
    # A later message that does mention it is answered: the first was seen and ignored.
    marker = await h.fake.post_message(
        h.guild.default_channel, h.alice, f"{mention(h)} make it red", reply_to=result
    )
    await answer_to(h, marker)
    assert len(h.api.requests) == 2 and h.api.requests[-1].prompt == "make it red"


async def test_replying_to_a_deleted_or_foreign_message_is_refused_privately(
    harness: Harness,
) -> None:
    h = harness
    result = await generated(h)
    before = await h.counts()
    result.deleted = True
    await h.fake.post_message(
        h.guild.default_channel, h.alice, f"{mention(h)} make it blue", reply_to=result
    )
    assert "was deleted" in await dm_text(h, h.alice)
    bobs = await h.fake.post_message(h.guild.default_channel, h.bob, "look at this")
    await h.fake.post_message(
        h.guild.default_channel, h.alice, f"{mention(h)} edit this", reply_to=bobs
    )
    await h.fake.wait_for(lambda: len(h.fake.dm_messages(h.alice)) >= 2, 10)
    assert "Reply to one of my images" in h.fake.dm_messages(h.alice)[-1].content
    assert await h.counts() == before and len(h.api.requests) == 1


async def test_another_member_cannot_continue_someone_elses_image(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    before = await h.counts()
    await h.fake.post_message(
        h.guild.default_channel, h.bob, f"{mention(h)} make it mine", reply_to=result
    )
    text = await dm_text(h, h.bob)
    assert f"only <@{h.alice.id}> can reroll or edit this image" in text
    assert await h.counts() == before and await h.balance(h.bob) == 300


async def test_a_failed_turn_is_refunded_once_and_left_out(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    h.api.script([Behaviour(Mode.BAD_REQUEST)])
    reply = await h.fake.post_message(
        h.guild.default_channel, h.alice, f"{mention(h)} break it", reply_to=result
    )
    failed = await answer_to(h, reply)
    assert "❌" in failed.content and "refunded" in failed.content
    assert await h.balance(h.alice) == 200
    moves = await generations(h, h.alice)
    assert [m["kind"] for m in moves] == ["GENERATION", "GENERATION", "REFUND"]
    assert moves[1]["job_id"] == moves[2]["job_id"]
    # The failed turn is not part of what the next turn sends.
    again = await h.fake.post_message(
        h.guild.default_channel, h.alice, f"{mention(h)} try again", reply_to=result
    )
    await answer_to(h, again)
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model", "user"]
    assert [r["position"] for r in await turn_rows(h)] == [1, 1]
    await assert_ledger_consistent(h.app.db)


# Threads -----------------------------------------------------------------------------------


async def open_thread(h: Harness, result: FakeMessage, user: FakeUser | None = None) -> FakeChannel:
    rec = await h.fake.click(result, label="Continue in a thread", user=user or h.alice)
    await rec.wait_for(lambda r: any("Opened" in m.content for m in r.followups), 10)
    thread = h.fake.threads(result.channel_id)[-1]
    assert thread.id == result.id  # a thread started from the result message
    return thread


def last_image_in(h: Harness, thread: FakeChannel) -> FakeMessage | None:
    images = [m for m in h.fake.channel_messages(thread) if has_image(m) and not m.deleted]
    return images[-1] if images else None


async def thread_turn(h: Harness, thread: FakeChannel, text: str) -> FakeMessage:
    message = await h.fake.post_message(thread, h.alice, f"{mention(h)} {text}")
    return await answer_to(h, message)


async def test_a_thread_with_several_turns_undo_reroll_and_branch(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    thread = await open_thread(h, result)
    intro = h.fake.channel_messages(thread)[0]
    assert [b["label"] for b in intro.buttons()] == ["Edit", "Undo"]
    one = await thread_turn(h, thread, "add a hat")
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model", "user"]
    # The thread's Edit button: the second turn, with both earlier turns.
    click = await h.fake.click(one, label="Edit", user=h.alice)
    modal = await click.wait_modal()
    submit = await h.fake.submit_modal(modal, {"instruction": "add a scarf"}, user=h.alice)
    two = await submit.wait_original(has_image, timeout=10)
    await h.settle()
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model"] * 2 + ["user"]
    assert await h.balance(h.alice) == 0  # three paid jobs
    assert [b["label"] for b in two.buttons()] == ["Reroll", "Undo", "Branch", "Edit"]
    # Undo: free, and the next turn continues from turn 1.
    undo = await h.fake.click(two, label="Undo", user=h.alice)
    said = await undo.wait_original()
    assert "Turn 2 undone" in said.content
    assert await h.balance(h.alice) == 0
    await top_up(h, h.alice, 300)
    three = await thread_turn(h, thread, "add boots")
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model"] * 2 + ["user"]
    prompts = [c["parts"][0]["text"] for c in h.api.requests[-1].contents if c["role"] == "user"]
    assert prompts == ["a banana astronaut", "add a hat", "add boots"]
    # Reroll of the latest turn: the same prompt and history, in its place.
    reroll = await h.fake.click(three, label="Reroll", user=h.alice)
    again = await reroll.wait_original(has_image, timeout=10)
    await h.settle()
    assert h.api.requests[-1].prompt == "add boots"
    assert h.api.requests[-1].history == h.api.requests[-2].history
    rows = await turn_rows(h)
    assert sorted(r["position"] for r in rows if r["undone_at"] is None) == [1, 2, 2]
    # Branch from turn 1: a new thread whose conversation goes on from there.
    branch = await h.fake.click(one, label="Branch", user=h.alice)
    await branch.wait_for(lambda r: any("Opened" in m.content for m in r.followups), 10)
    new_thread = h.fake.threads(h.guild.default_channel)[-1]
    assert new_thread.id != thread.id and new_thread.parent_id == h.guild.default_channel.id
    await thread_turn(h, new_thread, "paint it gold")
    prompts = [c["parts"][0]["text"] for c in h.api.requests[-1].contents if c["role"] == "user"]
    assert prompts == ["a banana astronaut", "add a hat", "paint it gold"]
    assert again is not None
    await assert_ledger_consistent(h.app.db)


async def top_up(h: Harness, user: FakeUser, coins: int) -> None:
    """A moderator's /grant (a ledger row like any other)."""
    rec = await h.fake.slash("grant", {"user": user, "amount": coins}, user=h.mod)
    await rec.wait_original()
    assert await h.balance(user) >= coins


async def test_the_conversation_survives_a_restart(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    thread = await open_thread(h, result)
    await thread_turn(h, thread, "add a hat")
    await h.stop_bot()
    await h.start_bot()
    # The thread's buttons and the conversation (texts, images, signatures) are all stored.
    await thread_turn(h, thread, "add a scarf")
    request = h.api.requests[-1]
    assert [c["role"] for c in request.contents] == ["user", "model"] * 2 + ["user"]
    assert len(request.signatures) >= 2


async def test_who_may_do_what_in_a_thread(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    thread = await open_thread(h, result)
    one = await thread_turn(h, thread, "add a hat")
    before = await h.counts()
    # bob may not add a turn (remixing is the owner's), nor undo alice's turn.
    await h.fake.post_message(thread, h.bob, f"{mention(h)} make it mine")
    assert await dm_text(h, h.bob)
    undo = await refusal(await h.fake.click(one, label="Undo", user=h.bob))
    assert "Only the member who started" in undo.content
    assert await h.counts() == before
    # A moderator of the server may undo (tidying a thread), and it costs nobody anything.
    said = await (await h.fake.click(one, label="Undo", user=h.mod)).wait_original()
    assert "Turn 1 undone" in said.content
    assert await h.balance(h.alice) == 100 and await h.balance(h.mod) == 300
    # Nothing left to undo.
    nothing = await refusal(await h.fake.click(one, label="Undo", user=h.alice))
    assert "no turn to undo" in nothing.content


async def test_a_thread_the_bot_cannot_open_or_post_in(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    bot_role = h.fake.bot_role(h.guild)
    channel = h.guild.default_channel
    h.fake.set_channel_overwrite(channel, bot_role, deny=CREATE_PUBLIC_THREADS)
    refused = await refusal(await h.fake.click(result, label="Continue in a thread", user=h.alice))
    assert "can't open or post in a thread" in refused.content
    assert h.fake.threads() == []
    # Allowed to open it but not to post in threads: a turn there charges nothing.
    h.fake.set_channel_overwrite(channel, bot_role, deny=SEND_IN_THREADS)
    rec = await h.fake.click(result, label="Continue in a thread", user=h.alice)
    await refusal(rec)
    before = await h.counts()
    thread = h.fake.threads()[-1]
    await h.fake.post_message(thread, h.alice, f"{mention(h)} add a hat")
    assert "can't" in await dm_text(h, h.alice) or await h.counts() == before
    assert await h.counts() == before and await h.balance(h.alice) == 200


async def test_a_thread_opens_once_and_only_for_the_owner(harness: Harness) -> None:
    h = harness
    result = await generated(h)
    before = await h.counts(), await h.rows("conversations")
    refused = await refusal(await h.fake.click(result, label="Continue in a thread", user=h.bob))
    assert f"only <@{h.alice.id}>" in refused.content
    assert h.fake.threads() == [] and (await h.counts(), await h.rows("conversations")) == before
    await open_thread(h, result)
    # Discord allows one thread per message: a second press says so, and writes nothing.
    again = await refusal(await h.fake.click(result, label="Continue in a thread", user=h.alice))
    assert "can't open or post in a thread" in again.content
    assert len(h.fake.threads()) == 1 and await h.rows("conversations") == 1


async def test_the_fake_keeps_discords_rules_for_threads_and_message_content(
    harness: Harness,
) -> None:
    """What the bot is tested against: a thread's name is checked against Discord's spec,
    and a message that doesn't mention the bot reaches it without its content."""
    h = harness
    channel = h.guild.default_channel
    seen: list[str] = []

    async def on_message(message: Any) -> None:
        seen.append(message.content)

    h.app.add_listener(on_message)
    await h.fake.post_message(channel, h.alice, "hello everyone")
    await h.fake.post_message(channel, h.alice, f"{mention(h)} hello bot")
    await h.fake.wait_for(lambda: len(seen) == 2, 10)
    assert seen == ["", f"{mention(h)} hello bot"]
    with pytest.raises(discord.HTTPException) as refused:
        await h.app.http.start_thread_without_message(
            channel.id, name="x" * 101, auto_archive_duration=1440, type=11
        )
    assert refused.value.status == 400 and refused.value.code == 50035
    assert [r.path for r in h.fake.take_invalid()] == [f"/api/v10/channels/{channel.id}/threads"]


async def test_a_turn_cut_off_by_a_crash_is_refunded_once_and_left_out(harness: Harness) -> None:
    """A process died while a turn was being made: the next start refunds its job (once), and
    the conversation goes on from the turn before."""
    h = harness
    result = await generated(h)
    thread = await open_thread(h, result)
    await thread_turn(h, thread, "add a hat")
    conversation = await h.app.conversations.in_thread(thread.id)
    assert conversation is not None
    crashed = await h.crashed_job(h.alice, "add a scarf", processing=True)
    await h.app.conversations.repo.add_turn(conversation.id, crashed.id, "add a scarf")
    await h.stop_bot()
    await h.start_bot()
    await h.fake.wait_for(lambda: any("refunded" in m.content for m in h.fake.channel_log), 15)
    refunds = await h.app.db.fetchall(
        "SELECT COUNT(*) AS n FROM coin_transactions WHERE job_id = ? AND kind = 'REFUND'",
        (crashed.id,),
    )
    assert refunds[0]["n"] == 1
    balance = await h.balance(h.alice)
    await thread_turn(h, thread, "add boots")
    prompts = [c["parts"][0]["text"] for c in h.api.requests[-1].contents if c["role"] == "user"]
    assert prompts == ["a banana astronaut", "add a hat", "add boots"]
    assert await h.balance(h.alice) == balance - 100
    await assert_ledger_consistent(h.app.db)


async def test_conversations_in_two_servers_are_apart_and_paid_there(harness: Harness) -> None:
    """owner2 talks to an image in each server: each reply continues its own server's image,
    in a conversation of that server, paid from that server's wallet."""
    h = harness
    m = h.owner2
    here = await h.fake.slash("generate", {"prompt": "a red kite"}, user=m)
    kite = await here.wait_original(has_image, timeout=10)
    there = await h.fake.slash("generate", {"prompt": "a blue boat"}, user=m, guild=h.other)
    boat = await there.wait_original(has_image, timeout=10)
    await h.settle()
    before_here, before_there = await h.balance(m), await h.balance(m, h.other)
    reply_here = await h.fake.post_message(
        h.guild.default_channel, m, f"{mention(h)} at dusk", reply_to=kite
    )
    reply_there = await h.fake.post_message(
        h.other.default_channel, m, f"{mention(h)} in a storm", reply_to=boat
    )
    answer_here = await answer_to(h, reply_here)
    answer_there = await answer_to(h, reply_there)
    assert has_image(answer_here) and has_image(answer_there)
    assert h.api.requests[-1].prompt in ("at dusk", "in a storm")
    rows = await h.app.db.fetchall(
        "SELECT c.guild_id, t.prompt FROM conversation_turns t "
        "JOIN conversations c ON c.id = t.conversation_id ORDER BY t.created_at"
    )
    assert sorted((str(r[0]), r[1]) for r in rows) == sorted(
        [(str(h.guild.id), "at dusk"), (str(h.other.id), "in a storm")]
    )
    # Each turn paid in its own server (guild wallets: one a server).
    cost = before_here - await h.balance(m)
    assert cost > 0 and before_there - await h.balance(m, h.other) == cost
    await assert_ledger_consistent(h.app.db)
