"""The character and style library (issue 22 item 5), end to end: `/character save|list|show|
delete` per member and per server (moderators' shared style sheet), `/generate character:`
sending the saved references (counted against the model's limit), in two servers, with a
second member and a moderator (who may delete what)."""

from __future__ import annotations

from pathlib import Path

from tests.cogs.conftest import Harness, png, refusal
from tests.cogs.test_generate import has_image
from tests.fakes.discord_server import FakeGuild, FakeMessage, FakeUser
from tests.storage.helpers import assert_ledger_consistent

ZARA = (png(30, 40, "purple"), png(40, 30, "teal"))


async def run(h: Harness, sub: str, options: dict[str, object], user: FakeUser,
              guild: FakeGuild | None = None) -> FakeMessage:  # fmt: skip
    rec = await h.fake.slash(f"character {sub}", options, user=user, guild=guild)
    return await rec.wait_original(lambda m: bool(m.content or m.embeds), timeout=10)


async def save(
    h: Harness, user: FakeUser, name: str, *images: bytes, **more: object
) -> FakeMessage:
    files = {
        ("image" if n == 0 else f"image{n + 1}"): h.fake.upload(data, f"ref{n}.png")
        for n, data in enumerate(images)
    }
    return await run(h, "save", {"name": name, **files, **more}, user)


async def characters(h: Harness) -> list[tuple[str, str]]:
    rows = await h.app.db.fetchall("SELECT name, owner_id FROM characters ORDER BY name")
    return [(r["name"], "shared" if r["owner_id"] == "" else "own") for r in rows]


async def test_a_saved_character_is_sent_with_generate(harness: Harness) -> None:
    h = harness
    saved = await save(h, h.alice, "Zara", *ZARA)
    assert saved.ephemeral and "Saved **Zara** (2 images)" in saved.content
    assert (
        sorted(await h.objects())
        == sorted(k for k in await h.objects() if k.startswith("characters/"))
        and len(await h.objects()) == 2
    )
    listed = await run(h, "list", {}, h.alice)
    assert "**Zara**: yours, 2 images" in listed.embed_text()
    shown = await run(h, "show", {"name": "zara"}, h.alice)
    assert shown.ephemeral and len(shown.attachments) == 2
    # Autocomplete offers it on /generate.
    rec = await h.fake.autocomplete(
        "generate", {"prompt": "x", "character": "za"}, "character", user=h.alice
    )
    await rec.wait_for(lambda r: r.choices is not None)
    assert rec.choices == [{"name": "Zara (yours, 2 images)", "value": "Zara"}]
    photo = png(50, 50, "white")
    rec = await h.fake.slash(
        "generate",
        {"prompt": "Zara on a beach", "character": "Zara", "image": h.fake.upload(photo, "b.png")},
        user=h.alice,
    )
    await rec.wait_original(has_image, timeout=15)
    await h.settle()
    (request,) = h.api.requests
    assert request.images[0][1] == photo and len(request.images) == 3
    assert await h.balance(h.alice) == 200  # charged once, saving was free
    await assert_ledger_consistent(h.app.db)


async def test_characters_are_per_member_per_server_with_a_shared_style_sheet(
    harness: Harness,
) -> None:
    h = harness
    await save(h, h.alice, "Zara", *ZARA)
    # Bob doesn't see Alice's; a member can't save for the server.
    assert "No characters here yet" in (await run(h, "list", {}, h.bob)).content
    refused = await save(h, h.bob, "House", ZARA[0], shared=True)
    assert "Only this server's moderators" in refused.content
    # The moderator's shared style sheet is everyone's here.
    shared = await save(h, h.mod, "House style", ZARA[1], shared=True)
    assert "for everyone in this server" in shared.content
    assert (
        "**House style**: this server's, 1 image" in (await run(h, "list", {}, h.bob)).embed_text()
    )
    rec = await h.fake.slash(
        "generate", {"prompt": "in our style", "character": "house style"}, user=h.bob
    )
    await rec.wait_original(has_image, timeout=15)
    await h.settle()
    assert len(h.api.requests[0].images) == 1
    # In the other server neither exists.
    h.fake.add_member(h.other, h.alice)
    elsewhere = await run(h, "list", {}, h.alice, guild=h.other)
    assert "No characters here yet" in elsewhere.content
    rec = await h.fake.slash(
        "generate", {"prompt": "x", "character": "Zara"}, user=h.alice, guild=h.other
    )
    answer = await refusal(rec)
    assert "no character called Zara" in answer.content
    assert await characters(h) == [("House style", "shared"), ("Zara", "own")]


async def test_who_may_delete_what(harness: Harness) -> None:
    h = harness
    await save(h, h.alice, "Zara", *ZARA)
    await save(h, h.mod, "House style", ZARA[0], shared=True)
    # Bob can't reach Alice's, nor delete the server's.
    assert "no character called Zara" in (await run(h, "delete", {"name": "Zara"}, h.bob)).content
    denied = await run(h, "delete", {"name": "House style"}, h.bob)
    assert "isn't yours" in denied.content
    # The moderator deletes Alice's (named by member), objects and all; Alice her own too.
    done = await run(h, "delete", {"name": "zara", "member": h.alice}, h.mod)
    assert "Deleted **Zara**" in done.content
    assert await characters(h) == [("House style", "shared")]
    assert len(await h.objects()) == 1
    assert "Deleted" in (await run(h, "delete", {"name": "House style"}, h.mod)).content
    assert await characters(h) == [] and await h.objects() == []


async def test_bad_saves_leave_nothing(harness: Harness) -> None:
    h = harness
    await save(h, h.alice, "Zara", *ZARA)
    before = await h.counts()
    taken = await save(h, h.alice, "ZARA", ZARA[0])
    assert "already a character called ZARA" in taken.content
    bad = await save(h, h.alice, "!!!", ZARA[0])
    assert "1 to 32 letters" in bad.content
    not_image = await save(h, h.alice, "Text", b"not an image at all")
    assert not_image.ephemeral and "Saved" not in not_image.content
    assert await h.counts() == before and len(await h.objects()) == 2


async def test_a_characters_images_count_against_the_models_limit(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    profiles = tmp_path / "models.toml"
    profiles.write_text('[[model]]\nid = "gemini-nano-banana-2.1"\nmax_reference_images = 3\n')
    await h.stop_bot()
    await h.start_bot(nanobanana_model_profiles=profiles)
    await save(h, h.alice, "Zara", *ZARA)
    before = await h.counts()
    files = {"image": h.fake.upload(png(), "a.png"), "image2": h.fake.upload(png(), "b.png")}
    rec = await h.fake.slash(
        "generate", {"prompt": "too many", "character": "Zara", **files}, user=h.alice
    )
    answer = await refusal(rec)
    assert "at most 3 images" in answer.content and "has 4" in answer.content
    assert rec.callbacks[0].type == 4 and h.api.requests == []
    assert await h.counts() == before
