"""Style presets end to end: moderators add, list and delete a server's named styles (a prompt
suffix and optional reference images kept in object storage); members pick one with
`/generate style:` (autocompleted); refusals are private and leave nothing behind."""

from __future__ import annotations

from bot.config import EconomyScope
from tests.cogs.conftest import Harness, outcome, png, refusal
from tests.fakes.discord_server import FakeGuild, FakeUser, InteractionRecord
from tests.storage.helpers import assert_ledger_consistent


async def style(
    h: Harness, sub: str, options: dict[str, object], *, user: FakeUser | None = None,
    guild: FakeGuild | None = None,
) -> str:  # fmt: skip
    rec = await h.fake.slash(f"settings style {sub}", options, user=user or h.mod, guild=guild)
    message = await rec.wait_original(timeout=10)
    assert message.ephemeral
    return message.text


async def generate(
    h: Harness, style_name: str, *, user: FakeUser | None = None, guild: FakeGuild | None = None
) -> InteractionRecord:
    return await h.fake.slash(
        "generate", {"prompt": "a fox", "style": style_name}, user=user or h.alice, guild=guild
    )


async def test_a_style_adds_its_words_to_the_prompt(harness: Harness) -> None:
    h = harness
    text = await style(h, "add", {"name": "Watercolour", "suffix": "watercolour,  soft light"})
    assert "Added the style `Watercolour` (0 images)" in text
    assert "**Watercolour** · watercolour, soft light" in await style(h, "list", {}, user=h.alice)
    rec = await h.fake.autocomplete(
        "generate", {"prompt": "a fox", "style": "wat"}, "style", user=h.alice
    )
    await rec.wait_for(lambda r: r.choices is not None)
    assert [c["value"] for c in rec.choices or []] == ["Watercolour"]
    result = await outcome(await generate(h, "watercolour"))
    assert result.filenames
    assert h.api.requests[-1].prompt == "a fox, watercolour, soft light"
    assert h.api.requests[-1].images == []
    assert await h.balance(h.alice) == 200
    await assert_ledger_consistent(h.app.db)


async def test_a_styles_reference_images_go_with_the_prompt_and_go_away_with_it(
    harness: Harness,
) -> None:
    h = harness
    reference = h.fake.upload(png(30, 30, "purple"), "ref.png")
    text = await style(h, "add", {"name": "Purple", "suffix": "in purple", "image": reference})
    assert "(1 image)" in text
    objects = [k for k in await h.objects() if k.startswith("styles/")]
    assert len(objects) == 1 and objects[0].startswith(f"styles/{h.guild.id}/")
    await outcome(await generate(h, "Purple"))
    ((mime, data),) = h.api.requests[-1].images
    assert mime.startswith("image/") and data
    # With the member's own image too: theirs first, then the style's.
    rec = await h.fake.slash(
        "generate",
        {"prompt": "a fox", "style": "Purple", "image": h.fake.upload(png(8, 8, "red"), "a.png")},
        user=h.alice,
    )
    await outcome(rec)
    assert len(h.api.requests[-1].images) == 2
    assert "Deleted the style `Purple`" in await style(h, "delete", {"name": "purple"})
    assert [k for k in await h.objects() if k.startswith("styles/")] == []
    await h.settle()  # the images shown are stored
    before = await h.counts()
    answer = await refusal(await generate(h, "Purple"))
    assert "no style called “Purple”" in answer.content
    assert await h.counts() == before


async def test_only_moderators_manage_styles_and_bad_ones_leave_nothing(harness: Harness) -> None:
    h = harness
    before = await h.counts()
    text = await style(h, "add", {"name": "Mine", "suffix": "x"}, user=h.alice)
    assert "Only this server's moderators" in text
    big = h.fake.upload(png(), "huge.png", size=5_000_000)
    assert "the limit is 1.0 MB" in await style(
        h, "add", {"name": "Big", "suffix": "x", "image": big}
    )
    assert "Style names are 1 to 32 characters" in await style(
        h, "add", {"name": "a/b", "suffix": "x"}
    )
    assert await h.counts() == before
    await style(h, "add", {"name": "Noir", "suffix": "film noir"})
    assert "already has a style called “noir”" in await style(
        h, "add", {"name": "noir", "suffix": "again", "image": h.fake.upload(png(), "n.png")}
    )
    assert [k for k in await h.objects() if k.startswith("styles/")] == []
    assert "Only this server's moderators" in await style(
        h, "delete", {"name": "Noir"}, user=h.alice
    )
    assert "no style called “Sepia”" in await style(h, "delete", {"name": "Sepia"})
    assert "Noir" in await style(h, "list", {})


async def test_styles_belong_to_their_server_in_both_economies(harness: Harness) -> None:
    h = harness
    await style(h, "add", {"name": "Noir", "suffix": "film noir"})
    answer = await refusal(await generate(h, "Noir", user=h.owner2, guild=h.other))
    assert "no style called “Noir”" in answer.content and h.api.requests == []
    assert "no styles yet" in await style(h, "list", {}, user=h.owner2, guild=h.other)
    await h.stop_bot()
    await h.start_bot(economy_scope=EconomyScope.GLOBAL)
    await style(h, "add", {"name": "Pop", "suffix": "pop art"}, user=h.owner2, guild=h.other)
    await outcome(await generate(h, "Pop", user=h.owner2, guild=h.other))
    assert h.api.requests[-1].prompt == "a fox, pop art"
    assert await h.balance(h.owner2, h.other) == 200 == await h.balance(h.owner2)
    await assert_ledger_consistent(h.app.db)
