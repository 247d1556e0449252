"""A server's daily image cap counts every stored image, the further images of one answer too:
an answer with more images than the cap has room for keeps (shows and stores) only as many as
fit, and the cap is never passed; a server without a cap keeps them all. In both economy
scopes, over two servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.services.budgets import day_of
from storage.timeutil import utcnow
from tests.cogs.conftest import Harness, make_harness, outcome
from tests.fakes.discord_server import FakeGuild, FakeMessage, FakeUser
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent


@pytest.fixture(params=["guild", "global"])
async def scoped(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with AsyncExitStack() as stack:
        yield await make_harness(stack, tmp_path, economy_scope=request.param)


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


async def generate(h: Harness, user: FakeUser, prompt: str, guild: FakeGuild | None = None,
                   images: int = 1) -> FakeMessage:  # fmt: skip
    if images > 1:  # (a refused request would leave its scripted answer to the next one)
        h.api.script([Behaviour(Mode.OK, images=images)])
    rec = await h.fake.slash("generate", {"prompt": prompt}, user=user, guild=guild)
    message = await outcome(rec, timeout=20)
    await h.settle()
    return message


async def stored_images(h: Harness, guild: FakeGuild) -> int:
    return int(
        await h.app.db.fetchval(
            "SELECT COUNT(*) FROM images WHERE guild_id = ? AND status = 'COMPLETED'",
            (str(guild.id),),
        )
    )


async def day_total(h: Harness, guild: FakeGuild) -> int:
    value = await h.app.db.fetchval(
        "SELECT used FROM budget_totals WHERE scope = ? AND kind = 'images_day' AND period = ?",
        (f"guild:{guild.id}", day_of(utcnow())),
    )
    return 0 if value is None else int(value)


async def test_one_answer_never_passes_the_daily_image_cap(scoped: Harness) -> None:
    h = scoped
    rec = await h.fake.slash(
        "settings set", {"setting": "daily_image_cap", "value": "2"}, user=h.mod
    )
    assert "is now 2" in (await rec.wait_original()).content
    # Three images in one answer, two left today: two are shown and stored, one dropped.
    message = await generate(h, h.alice, "three pears", images=3)
    assert has_image(message) and len(message.attachments) == 2
    assert await stored_images(h, h.guild) == 2
    assert await day_total(h, h.guild) == 2
    assert len(await h.objects()) == 4  # two images and their thumbnails
    # The cap is reached: the next request is refused before any charge.
    refused = await generate(h, h.bob, "one more")
    assert refused.ephemeral and "made its 2 images for today" in refused.content
    assert await stored_images(h, h.guild) == 2
    # Other Club has no cap: all three images of an answer are kept there.
    other = await generate(h, h.owner2, "three plums", guild=h.other, images=3)
    assert len(other.attachments) == 3
    assert await stored_images(h, h.other) == 3
    # What the cap counts equals what the usage rows say (the running total is exact).
    usage = int(
        await h.app.db.fetchval(
            "SELECT SUM(images) FROM generation_usage WHERE guild_id = ? AND status = 'BILLED'",
            (str(h.guild.id),),
        )
    )
    assert usage == 2
    await assert_ledger_consistent(h.app.db)


async def test_the_last_room_of_the_day_keeps_one_image(scoped: Harness) -> None:
    h = scoped
    rec = await h.fake.slash(
        "settings set", {"setting": "daily_image_cap", "value": "3"}, user=h.mod
    )
    await rec.wait_original()
    first = await generate(h, h.alice, "two figs", images=2)
    assert len(first.attachments) == 2
    last = await generate(h, h.bob, "four kiwis", images=4)
    assert len(last.attachments) == 1  # one place left: its own
    assert await stored_images(h, h.guild) == 3 == await day_total(h, h.guild)
    await assert_ledger_consistent(h.app.db)
