"""The fake Discord server, driven end to end by a real discord.py bot."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_server import (
    FakeDiscord,
    FakeGuild,
    FakeUser,
    running_bot,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
OUT_PNG = b"\x89PNG\r\n\x1a\nrendered-by-the-bot"


class DemoModal(discord.ui.Modal, title="Describe it"):
    text: discord.ui.TextInput[DemoModal] = discord.ui.TextInput(
        label="Text", custom_id="demo:text", max_length=50
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"modal got {self.text.value}", ephemeral=True)


class LabelModal(discord.ui.Modal, title="Feedback"):
    """New-style modal: a Label (component type 18) wrapping the text input."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: discord.ui.TextInput[LabelModal] = discord.ui.TextInput(
            custom_id="fb:text", style=discord.TextStyle.paragraph
        )
        self.add_item(discord.ui.Label(text="Your feedback", component=self.answer))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"feedback {self.answer.value}", ephemeral=True)


class DemoView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Edit", custom_id="demo:edit", style=discord.ButtonStyle.primary)
    async def edit(
        self, interaction: discord.Interaction, button: discord.ui.Button[DemoView]
    ) -> None:
        button.disabled = True
        await interaction.response.edit_message(content="edited by button", view=self)

    @discord.ui.button(label="Modal", custom_id="demo:modal")
    async def modal(
        self, interaction: discord.Interaction, button: discord.ui.Button[DemoView]
    ) -> None:
        await interaction.response.send_modal(DemoModal())

    @discord.ui.select(
        custom_id="demo:select",
        options=[
            discord.SelectOption(label="Red", value="red"),
            discord.SelectOption(label="Blue", value="blue"),
        ],
    )
    async def pick(
        self, interaction: discord.Interaction, select: discord.ui.Select[DemoView]
    ) -> None:
        await interaction.response.send_message(f"picked {','.join(select.values)}", ephemeral=True)


class Counter(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"nb:test:(?P<id>\d+)"
):
    def __init__(self, item_id: int) -> None:
        super().__init__(
            discord.ui.Button(label=f"Dynamic {item_id}", custom_id=f"nb:test:{item_id}")
        )
        self.item_id = item_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Counter:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"dynamic {self.item_id}", ephemeral=True)


class DemoBot(commands.Bot):
    def __init__(self, guild_id: int) -> None:
        super().__init__(
            command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0
        )
        self.guild_id = guild_id
        self.release_late = asyncio.Event()
        self.late_errors: list[discord.HTTPException] = []
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        tree = self.tree

        @tree.command(name="echo", description="Echo every option back")
        async def echo(
            interaction: discord.Interaction,
            text: str,
            count: int,
            who: discord.User,
            image: discord.Attachment,
        ) -> None:
            data = await image.read()
            digest = hashlib.sha256(data).hexdigest()
            await interaction.response.send_message(
                f"{text}|{count}|{who.id}|{image.filename}|{image.content_type}|{image.size}|{digest}",
                ephemeral=True,
            )

        @tree.command(name="render", description="Defer, then a followup with file/embed/view")
        async def render(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            view = DemoView()
            view.add_item(Counter(7))
            embed = discord.Embed(title="Result", description="a banana")
            embed.set_image(url="attachment://out.png")
            await interaction.followup.send(
                "render done",
                file=discord.File(io.BytesIO(OUT_PNG), filename="out.png"),
                embed=embed,
                view=view,
            )

        @tree.command(name="late", description="Defers, then answers after the token expired")
        async def late(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True)
            await self.release_late.wait()
            try:
                await interaction.followup.send("too late")
            except discord.HTTPException as exc:
                self.late_errors.append(exc)
                assert isinstance(interaction.channel, discord.TextChannel)
                await interaction.channel.send("fallback: token expired")

        @tree.command(name="roundtrip", description="Every webhook route")
        async def roundtrip(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(
                "first", file=discord.File(io.BytesIO(b"one"), filename="one.txt")
            )
            original = await interaction.original_response()
            assert original.content == "first" and original.attachments[0].filename == "one.txt"
            await interaction.edit_original_response(content="first edited", attachments=[])
            followup = await interaction.followup.send("second", ephemeral=True, wait=True)
            await followup.edit(content="second edited")
            extra = await interaction.followup.send("third", wait=True)
            await extra.delete()

        @tree.command(name="feedback", description="Opens a modal from a slash command")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(LabelModal())

        @tree.command(name="ping", description="Fast ephemeral answer")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        @tree.command(name="paint", description="Autocompleted option")
        async def paint(interaction: discord.Interaction, color: str) -> None:
            await interaction.response.send_message(color)

        @paint.autocomplete("color")
        async def paint_color(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [
                app_commands.Choice(name=c, value=c)
                for c in ("red", "blue", "black")
                if c.startswith(current)
            ]

        gallery = app_commands.Group(name="gallery", description="A command group")

        @gallery.command(name="show", description="A subcommand")
        async def show(interaction: discord.Interaction, page: int) -> None:
            await interaction.response.send_message(f"page {page}")

        tree.add_command(gallery)
        self.add_dynamic_items(Counter)
        guild = discord.Object(self.guild_id)
        tree.copy_global_to(guild=guild)
        self.synced = await tree.sync(guild=guild)
        await tree.sync()  # global too, so the commands also work in DMs


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


@dataclass
class World:
    fake: FakeDiscord
    guild: FakeGuild
    alice: FakeUser
    bot: DemoBot


@pytest.fixture
async def world() -> AsyncIterator[World]:
    # These tests read back what the bot uploaded: keep the bytes (the default keeps digests).
    async with FakeDiscord(keep_upload_bytes=True) as fake:
        guild = fake.add_guild("Banana Guild", channels=("general", "art"))
        alice = fake.add_user("alice", guilds=[guild])
        bot = DemoBot(guild.id)
        async with running_bot(fake, bot):
            yield World(fake, guild, alice, bot)
        assert not fake.server_errors
        assert not fake.unknown_routes
    assert discord.http.Route.BASE == "https://discord.com/api/v10"  # restored on stop


async def test_sync_and_slash_with_all_option_types(world: World) -> None:
    fake, guild, alice, bot = world.fake, world.guild, world.alice, world.bot
    assert bot.user is not None and bot.user.id == fake.bot_user.id
    assert bot.application_id == fake.application_id
    assert bot.get_guild(guild.id) is not None

    cmds = fake.commands(guild)
    assert set(cmds) == {
        "echo",
        "render",
        "late",
        "ping",
        "paint",
        "roundtrip",
        "feedback",
        "gallery",
    }
    assert [(o["name"], o["type"]) for o in cmds["echo"]["options"]] == [
        ("text", 3),
        ("count", 4),
        ("who", 6),
        ("image", 11),
    ]
    assert {c.name for c in bot.synced} == set(cmds)
    assert [gid for gid, _ in fake.sync_calls] == [guild.id, None]

    bob = fake.add_user("bob", guilds=[guild])
    upload = fake.upload(PNG, "cat.png", content_type="image/gif")  # the test may lie
    rec = await fake.slash(
        "echo", {"text": "hi", "count": 3, "who": bob, "image": upload}, user=alice
    )
    msg = await rec.wait_original()
    digest = hashlib.sha256(PNG).hexdigest()
    assert msg.content == f"hi|3|{bob.id}|cat.png|image/gif|{len(PNG)}|{digest}"
    assert msg.ephemeral and rec.ephemeral and msg.flags == 64
    assert rec.callback_type == 4
    assert rec.ack_latency is not None and 0 <= rec.ack_latency < 5
    assert msg.interaction is rec

    # raw bytes (no FakeFile) get a sniffed name and type
    rec2 = await fake.slash(
        "echo", {"text": "x", "count": 1, "who": alice}, attachments={"image": PNG}, user=alice
    )
    assert (await rec2.wait_original()).content.split("|")[3:5] == ["file.png", "image/png"]

    sub = await fake.slash("gallery", {"page": 2}, subcommand="show", user=alice)
    assert (await sub.wait_original()).content == "page 2"
    assert sub.payload["data"]["options"] == [
        {"name": "show", "type": 1, "options": [{"name": "page", "type": 4, "value": 2}]}
    ]

    dm = await fake.slash("ping", user=alice, dm=True)
    assert (await dm.wait_original()).content == "pong"
    assert "member" not in dm.payload and dm.payload["channel"]["type"] == 1
    assert "guild_id" not in dm.payload["data"]

    with pytest.raises(ValueError, match="no option"):
        await fake.slash("echo", {"txt": "typo"}, user=alice)
    with pytest.raises(ValueError, match="missing required"):
        await fake.slash("echo", {"text": "x"}, user=alice)
    with pytest.raises(LookupError, match="not a synced command"):
        await fake.slash("nope", user=alice)


async def test_defer_followup_components_modal_dynamic(world: World) -> None:
    fake, alice = world.fake, world.alice
    rec = await fake.slash("render", user=alice)
    assert (await rec.wait_callback()).type == 5
    msg = await rec.wait_followup()
    # The first followup after a thinking defer replaces the loading message.
    assert rec.original is msg and not msg.loading and not msg.ephemeral
    assert msg.content == "render done"
    assert msg.files == {"out.png": OUT_PNG}
    assert msg.attachments[0].content_type == "image/png"
    assert msg.embeds[0]["title"] == "Result"
    assert msg.embeds[0]["image"]["url"] == "attachment://out.png"
    assert [b["custom_id"] for b in msg.buttons()] == ["demo:edit", "demo:modal", "nb:test:7"]
    assert [s["custom_id"] for s in msg.selects()] == ["demo:select"]
    async with aiohttp.ClientSession() as http, http.get(msg.attachments[0].url) as resp:
        assert await resp.read() == OUT_PNG

    # select menu -> ephemeral reply
    sel = await fake.select(msg, "demo:select", ["blue"])
    assert (await sel.wait_original()).content == "picked blue"
    assert sel.original is not None and sel.original.ephemeral
    with pytest.raises(ValueError, match="not among options"):
        await fake.select(msg, "demo:select", ["green"])

    # dynamic item registered with add_dynamic_items
    dyn = await fake.click(msg, "nb:test:7", user=alice)
    assert (await dyn.wait_original()).content == "dynamic 7"

    # button opens a modal; submitting it gets an answer
    opener = await fake.click(msg, label="Modal")
    modal = await opener.wait_modal()
    assert opener.callback_type == 9 and modal.custom_id
    assert modal.title == "Describe it" and set(modal.fields()) == {"demo:text"}
    with pytest.raises(ValueError, match="chars"):
        await fake.submit_modal(opener, {"demo:text": "x" * 51})
    submit = await fake.submit_modal(opener, {"demo:text": "hello"})
    reply = await submit.wait_original()
    assert reply.content == "modal got hello" and reply.ephemeral

    # button edits the message it sits on (callback type 7)
    click = await fake.click(msg, "demo:edit")
    await click.wait_for(lambda r: r.original is not None and r.original.edited_at is not None)
    assert click.callback_type == 7 and click.original is msg
    assert msg.content == "edited by button"
    assert msg.button("Edit")["disabled"] is True
    assert click.edits[-1].content == "edited by button"
    with pytest.raises(ValueError, match="disabled"):
        await fake.click(msg, "demo:edit")


async def test_expired_token_is_401_and_bot_falls_back_to_channel(world: World) -> None:
    fake, guild, alice, bot = world.fake, world.guild, world.alice, world.bot
    rec = await fake.slash("late", user=alice)
    cb = await rec.wait_callback()
    assert cb.type == 5 and cb.data == {"flags": 64}
    assert rec.original is not None and rec.original.loading and rec.original.ephemeral
    fake.expire(rec)
    bot.release_late.set()
    fallback = await fake.wait_for_message(
        lambda m: m.content.startswith("fallback"), channel=guild.default_channel
    )
    assert fallback.content == "fallback: token expired"
    assert fake.channel_messages(guild.default_channel) == [fallback]
    assert [(e.status, e.code) for e in rec.errors] == [(401, 50027)]
    assert bot.late_errors[0].status == 401 and bot.late_errors[0].code == 50027


async def test_webhook_routes_and_label_modal(world: World) -> None:
    fake, alice = world.fake, world.alice
    rec = await fake.slash("roundtrip", user=alice)
    await rec.wait_for(lambda r: len(r.followups) == 2 and r.followups[1].deleted)
    assert rec.callback is not None and rec.callback.files[0].data == b"one"
    assert rec.original is not None
    assert rec.original.content == "first edited" and rec.original.attachments == []
    second, third = rec.followups
    assert second.content == "second edited" and second.ephemeral
    assert third.deleted and rec.deleted == [third]
    assert [e.content for e in rec.edits] == ["first edited", "second edited"]
    assert rec.errors == []

    opener = await fake.slash("feedback", user=alice)
    modal = await opener.wait_modal()
    assert modal.components[0]["type"] == 18
    with pytest.raises(ValueError, match="required"):
        await fake.submit_modal(modal, {})
    submit = await fake.submit_modal(modal.custom_id, {"fb:text": "great bot"})
    assert (await submit.wait_original()).content == "feedback great bot"


async def test_autocomplete(world: World) -> None:
    rec = await world.fake.autocomplete("paint", {"color": "bl"}, "color", user=world.alice)
    await rec.wait_for(lambda r: r.choices is not None)
    assert rec.callback_type == 8
    assert rec.choices == [{"name": "blue", "value": "blue"}, {"name": "black", "value": "black"}]


async def test_rest_reads_dms_permissions_and_errors(world: World) -> None:
    fake, guild, alice, bot = world.fake, world.guild, world.alice, world.bot
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}/api/v10/no/such/route") as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
        async with http.get(f"{fake.base_url}/api/v10/users/@me") as resp:
            assert resp.headers["Content-Type"] == "application/json"
    # A route Discord does not have is the bot's bug: recorded, and taken here on purpose.
    assert [(r.method, r.path, r.status) for r in fake.take_invalid()] == [
        ("GET", "/api/v10/no/such/route", 404)
    ]

    user = await bot.fetch_user(alice.id)
    assert user.name == "alice" and not user.bot
    member = await bot.get_guild(guild.id).fetch_member(alice.id)  # type: ignore[union-attr]
    assert member.id == alice.id
    channel = await bot.fetch_channel(guild.default_channel.id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"

    dm = await user.send("hello in DM")
    assert [m.content for m in fake.dm_messages(alice)] == ["hello in DM"]
    await dm.edit(content="edited DM")
    assert fake.dm_messages(alice)[0].content == "edited DM"

    shy = fake.add_user("shy", accepts_dms=False)
    with pytest.raises(discord.Forbidden) as denied:
        await (await bot.fetch_user(shy.id)).send("hi")
    assert denied.value.code == 50007

    text = bot.get_channel(guild.default_channel.id)
    assert isinstance(text, discord.TextChannel)
    sent = await text.send("with file", file=discord.File(io.BytesIO(b"abc"), "a.txt"))
    stored = fake.messages[sent.id]
    assert stored.files == {"a.txt": b"abc"} and sent.attachments[0].filename == "a.txt"
    assert await sent.attachments[0].read() == b"abc"
    await sent.add_reaction("👍")
    assert stored.reactions == ["👍"]
    await sent.delete()
    assert stored.deleted

    # a user message reaches the bot as MESSAGE_CREATE
    seen = asyncio.ensure_future(
        bot.wait_for("message", check=lambda m: m.author.id == alice.id, timeout=5)
    )
    await fake.post_message(guild.default_channel, alice, "hello bot")
    # Without the privileged Message Content intent, as Discord sends it: no content...
    assert (await seen).content == ""
    seen = asyncio.ensure_future(
        bot.wait_for("message", check=lambda m: m.author.id == alice.id, timeout=5)
    )
    # ...unless it mentions the bot.
    await fake.post_message(guild.default_channel, alice, f"<@{fake.bot_user.id}> hello bot")
    assert (await seen).content == f"<@{fake.bot_user.id}> hello bot"

    # world changes after connect reach the bot's cache
    second = fake.add_guild("Second Guild")
    extra = fake.add_channel(guild, "extra")
    await eventually(lambda: bot.get_guild(second.id) and bot.get_channel(extra.id))

    fake.inject_error("POST", f"/channels/{text.id}/messages", status=403, code=50013)
    with pytest.raises(discord.Forbidden):
        await text.send("blocked once")
    await text.send("fine again")

    fake.set_role_permissions(guild, guild.everyone, 0)
    fake.set_bot_permissions(guild, discord.Permissions(view_channel=True).value)
    with pytest.raises(discord.Forbidden) as missing:
        await text.send("no perms")
    assert missing.value.code == 50013


async def test_gateway_reconnect_resume_and_replay(world: World) -> None:
    fake, alice, bot = world.fake, world.alice, world.bot
    await fake.reconnect_bot(resume=True)  # op 7
    await fake.wait_for(lambda: fake.resumes == 1 and fake.connected)
    rec = await fake.slash("ping", user=alice)
    assert (await rec.wait_original()).content == "pong"

    # Dropped socket: the interaction sent while disconnected is replayed after RESUME.
    await fake.drop_connection()
    rec = await fake.slash("ping", user=alice)
    assert (await rec.wait_original()).content == "pong"
    assert fake.resumes == 2 and len(fake.identifies) == 1
    assert bot.is_ready()


async def test_hundreds_of_interactions(world: World) -> None:
    fake, alice = world.fake, world.alice
    started = time.monotonic()
    recs = await asyncio.gather(*(fake.slash("ping", user=alice) for _ in range(300)))
    await asyncio.gather(*(r.wait_original(timeout=10) for r in recs))
    elapsed = time.monotonic() - started
    assert all(r.original is not None and r.original.content == "pong" for r in recs)
    assert len({r.token for r in recs}) == 300
    assert all(r.ack_latency is not None for r in recs)
    assert elapsed < 10, f"300 interactions took {elapsed:.1f}s"


async def test_token_check_and_ack_deadline() -> None:
    async with FakeDiscord(token="right-token") as fake:
        guild = fake.add_guild()
        alice = fake.add_user("alice")
        with pytest.raises(discord.LoginFailure):
            async with running_bot(fake, DemoBot(guild.id), token="wrong-token"):
                pass
        async with running_bot(fake, DemoBot(guild.id), token="right-token"):
            fake.ack_deadline = 0.0  # every acknowledgement now arrives too late
            rec = await fake.slash("ping", user=alice)
            await rec.wait_for(lambda r: r.errors)
            assert [(e.status, e.code) for e in rec.errors] == [(404, 10062)]
            assert rec.expired and not rec.callbacks and alice.id in guild.members
