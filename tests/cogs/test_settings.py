"""/settings end to end: show with sources, changes that take effect in one server only, the
audit, and every kind of bad input refused with one private line and nothing changed."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tests.cogs.conftest import Harness
from tests.fakes.discord_server import FakeMessage


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


async def settings(harness: Harness, sub: str, options: Mapping[str, object], **kw: object) -> str:
    kw.setdefault("user", harness.mod)
    rec = await harness.fake.slash(f"settings {sub}", options, **kw)  # type: ignore[arg-type]
    message = await rec.wait_original()
    assert message.ephemeral, message
    return message.content + message.embed_text()


async def test_show_lists_effective_values_and_where_they_come_from(harness: Harness) -> None:
    text = await settings(harness, "show", {})
    assert "Cost per generated image**: 100 · *default*" in text
    assert "Channels for /generate and /upload**: all channels · *default*" in text
    await settings(harness, "set", {"setting": "generation_cost", "value": "40"})
    text = await settings(harness, "show", {})
    assert "Cost per generated image**: 40 · *set for this server*" in text
    # The other server keeps the environment's value.
    other = await settings(harness, "show", {}, user=harness.owner2, guild=harness.other)
    assert "Cost per generated image**: 100 · *default*" in other


async def test_changes_take_effect_here_only_and_are_recorded(harness: Harness) -> None:
    fake = harness.fake
    art = fake.add_channel(harness.guild, "art")
    role = fake.add_role(harness.guild, "artists")
    text = await settings(harness, "set", {"setting": "generation_cost", "value": "40"})
    assert "Cost per generated image is now 40 (set for this server)" in text
    await settings(harness, "set", {"setting": "channel_ids", "value": f"<#{art.id}>"})
    await settings(harness, "set", {"setting": "generate_role_id", "value": f"<@&{role.id}>"})
    await settings(harness, "set", {"setting": "public_results", "value": "no"})
    # Outside #art, or without the role: refused, free.
    rec = await fake.slash("generate", {"prompt": "x"}, user=harness.alice)
    assert f"only in <#{art.id}>" in (await rec.wait_original()).content
    rec = await fake.slash("generate", {"prompt": "x"}, user=harness.alice, channel=art)
    assert f"need the <@&{role.id}> role" in (await rec.wait_original()).content
    assert await harness.rows("images") == 0
    fake.add_member(harness.guild, harness.alice, roles=[role])
    rec = await fake.slash("generate", {"prompt": "a private cat"}, user=harness.alice, channel=art)
    result = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    # Results only for the requester: ephemeral, and so the balance may show.
    assert result.ephemeral and "Balance left\n260" in result.embed_text()
    assert await harness.balance(harness.alice) == 260
    # Uploads follow the channel rule too (not the role rule).
    up = await fake.slash("upload", {"image": fake.upload(b"\x89PNG")}, user=harness.bob)
    assert f"only in <#{art.id}>" in (await up.wait_original()).content
    # The other server is untouched.
    rec = await fake.slash("generate", {"prompt": "there"}, user=harness.alice, guild=harness.other)
    assert not (await rec.wait_original(has_image, timeout=10)).ephemeral
    assert await harness.balance(harness.alice, harness.other) == 200
    history = await settings(harness, "history", {})
    assert history.count(f"<@{harness.mod.id}>") == 4
    assert "**Results shown to everyone** default → no" in history
    await settings(harness, "reset", {"setting": "channel_ids"})
    assert "all channels · *default*" in await settings(harness, "show", {})


@pytest.mark.parametrize(
    ("setting", "value", "phrase"),
    [
        ("generation_cost", "ten", "isn't a whole number"),
        ("generation_cost", "-5", "from 0 to 1000000"),
        ("generation_cost", "1e9", "isn't a whole number"),
        ("upload_cost", "99999999999999999999999999999999999999", "from 0 to 1000000"),
        ("starter_coins", "1001", "from 0 to 1000"),  # MAX_GRANT
        ("daily_coins", "-1", "from 0 to 1000"),
        ("jobs_per_member", "3", "from 1 to 2"),  # MAX_JOBS_PER_USER
        ("public_results", "perhaps", "isn't yes or no"),
        ("channel_ids", "<#123456789012345678>", "isn't a channel of this server"),
        ("channel_ids", "#art", "isn't a channel of this server"),
        ("generate_role_id", "<@&123456789012345678>", "isn't a role of this server"),
        ("generate_role_id", "artists", "isn't a role of this server"),
        ("nonsense", "1", "no setting called nonsense"),
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    harness: Harness, setting: str, value: str, phrase: str
) -> None:
    before = await harness.counts()
    options = {"setting": setting, "value": value}
    text = await settings(harness, "set", options, validate=setting != "nonsense")
    assert phrase in text
    assert await harness.counts() == before


async def test_other_servers_channels_and_roles_are_unknown_here(harness: Harness) -> None:
    elsewhere = harness.other.default_channel
    before = await harness.counts()
    text = await settings(harness, "set", {"setting": "channel_ids", "value": f"<#{elsewhere.id}>"})
    assert "isn't a channel of this server" in text
    assert await harness.counts() == before


async def test_members_and_other_moderators_may_not_touch_settings(harness: Harness) -> None:
    await settings(harness, "show", {})  # the moderator has an account now
    before = await harness.counts()
    for sub, options in (
        ("show", {}),
        ("set", {"setting": "generation_cost", "value": "0"}),
        ("reset", {"setting": "generation_cost"}),
        ("history", {}),
    ):
        text = await settings(harness, sub, options, user=harness.alice)
        assert "Only this server's moderators" in text
        # owner2 owns Other Club; in Banana Club they are a member.
        text = await settings(harness, sub, options, user=harness.owner2)
        assert "Only this server's moderators" in text
    assert await harness.counts() == before


async def test_bot_admins_use_settings_without_manage_server(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(admin_user_ids=[harness.bob.id])
    text = await settings(harness, "set", {"setting": "upload_cost", "value": "5"},
                          user=harness.bob, guild=harness.other)  # fmt: skip
    assert "Cost per upload is now 5" in text
