"""The message command "Edit with Nano Banana" (issue 22 item 1): right-click any message with
images, say what to change in the form, and a paid job edits them, through the same order
path as /generate (rate limit, channel rules, blocklist, budgets, price), in two servers,
with a second member and a moderator, and the bad inputs: no image, too many, one over the
limits, a deleted message."""

from __future__ import annotations

from tests.cogs.conftest import Harness, png, refusal
from tests.cogs.test_blocklist_private import settings
from tests.cogs.test_generate import confirm_delete, has_image
from tests.fakes.discord_server import FakeMessage, FakeUser, InteractionRecord
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent

MENU = "Edit with Nano Banana"


async def posted(h: Harness, user: FakeUser, *images: bytes, channel: object = None) -> FakeMessage:
    files = [h.fake.upload(data, f"photo{n}.png") for n, data in enumerate(images)]
    where = channel if channel is not None else h.guild.default_channel
    return await h.fake.post_message(where, user, "look at this", files=files)  # type: ignore[arg-type]


async def open_form(h: Harness, message: FakeMessage, user: FakeUser) -> InteractionRecord:
    rec = await h.fake.message_command(MENU, message, user=user)
    await rec.wait_for(lambda r: r.modal is not None or bool(r.callbacks), timeout=10)
    return rec


async def edit(
    h: Harness, message: FakeMessage, user: FakeUser, instruction: str = "make it snow"
) -> InteractionRecord:
    rec = await open_form(h, message, user)
    assert rec.modal is not None, rec.callbacks
    return await h.fake.submit_modal(rec, {"instruction": instruction})


async def jobs(h: Harness) -> list[tuple[str, str]]:
    rows = await h.app.db.fetchall("SELECT kind, status FROM jobs ORDER BY created_at")
    return [(r["kind"], r["status"]) for r in rows]


async def test_the_menu_is_a_localised_message_command(harness: Harness) -> None:
    synced = harness.fake.command(MENU, harness.guild, type=3)
    assert synced["type"] == 3 and synced["name"] == MENU
    assert synced["name_localizations"]["es-ES"] == "Editar con Nano Banana"


async def test_a_members_photo_is_edited_by_another_member_who_pays(harness: Harness) -> None:
    h = harness
    photo = png(80, 40, "red")
    message = await posted(h, h.alice, photo)
    rec = await open_form(h, message, h.bob)
    assert rec.callbacks[0].type == 9 and rec.ack_latency is not None and rec.ack_latency < 3
    assert rec.modal is not None and rec.modal.title == MENU
    submitted = await h.fake.submit_modal(rec, {"instruction": "make it snow"})
    result = await submitted.wait_original(has_image, timeout=15)
    await h.settle()
    (request,) = h.api.requests
    assert request.images == [("image/png", photo)] and request.prompt == "make it snow"
    assert request.aspect_ratio == "16:9"  # the model's ratio nearest the photo's 2:1
    assert "make it snow" in result.embed_text() and not result.ephemeral
    assert [b["label"] for b in result.buttons()] == [
        "Reroll",
        "Edit",
        "Variations",
        "Delete",
        "Continue in a thread",
    ]
    # Bob paid; Alice, whose photo it was, did not.
    assert await h.balance(h.bob) == 200 and await h.balance(h.alice) == 300
    (image,) = (await h.app.image_repo.list_by_user(await h.user_id(h.bob))).items
    assert image.guild_id == h.guild.id and image.metadata["context"]["message_id"] == message.id
    # Stored as bytes, never as Discord's links.
    assert all("attachments" not in str(v) for v in image.metadata.values())
    assert await jobs(h) == [("image", "COMPLETED")]
    await assert_ledger_consistent(h.app.db)


async def test_embed_images_are_edited_too(harness: Harness) -> None:
    h = harness
    first, second = png(30, 30, "blue"), png(40, 40, "green")
    source = await posted(h, h.robot, second)
    preview = {"type": "rich", "title": "a card", "image": {
        "url": source.attachments[0].url, "proxy_url": source.attachments[0].url,
        "width": 40, "height": 40,
    }}  # fmt: skip
    outside = {"type": "rich", "image": {"url": "https://example.com/x.png"}}
    files = [h.fake.upload(first, "a.png")]
    message = await h.fake.post_message(
        h.guild.default_channel, h.alice, "two", files=files, embeds=[preview, outside]
    )
    rec = await edit(h, message, h.alice, "combine them")
    await rec.wait_original(has_image, timeout=15)
    await h.settle()
    # The attachment, then the embed's image from Discord; never a link elsewhere on the web.
    assert h.api.requests[0].images == [("image/png", first), ("image/png", second)]


async def test_a_message_without_images_is_refused_free(harness: Harness) -> None:
    h = harness
    message = await h.fake.post_message(h.guild.default_channel, h.alice, "just words")
    before = await h.counts()
    rec = await h.fake.message_command(MENU, message, user=h.alice)
    answer = await refusal(rec)
    assert answer.ephemeral and "no image to edit" in answer.content
    assert rec.modal is None and await h.counts() == before


async def test_too_many_and_oversized_images_are_refused_before_the_form(
    harness: Harness, tmp_path: object
) -> None:
    h = harness
    profiles = tmp_path / "models.toml"  # type: ignore[operator]
    profiles.write_text('[[model]]\nid = "gemini-nano-banana-2.1"\nmax_reference_images = 3\n')
    await h.stop_bot()
    await h.start_bot(nanobanana_model_profiles=profiles)
    message = await posted(h, h.alice, *(png(10 + n, 10) for n in range(4)))
    rec = await h.fake.message_command(MENU, message, user=h.alice)
    answer = await refusal(rec)
    assert "at most 3 images" in answer.content and "has 4" in answer.content
    big = h.fake.upload(png(20, 20), "huge.png")
    big.size = 5_000_000
    message = await h.fake.post_message(h.guild.default_channel, h.alice, "", files=[big])
    rec = await h.fake.message_command(MENU, message, user=h.alice)
    answer = await refusal(rec)
    assert "huge.png" in answer.content and "Attach a smaller image" in answer.content
    assert h.fake.downloads == [] and h.api.requests == []


async def test_a_message_deleted_before_the_form_is_sent_charges_nothing(
    harness: Harness,
) -> None:
    h = harness
    message = await posted(h, h.alice, png())
    rec = await open_form(h, message, h.alice)
    message.deleted = True  # its author deleted it meanwhile: the CDN forgets its files
    before = await h.balance(h.alice)
    submitted = await h.fake.submit_modal(rec, {"instruction": "make it snow"})
    answer = await refusal(submitted)
    assert "was the message deleted" in answer.content and "Nothing was charged" in answer.content
    assert await h.balance(h.alice) == before and h.api.requests == []
    assert await jobs(h) == []


async def test_a_failed_edit_is_refunded_once(harness: Harness) -> None:
    h = harness
    h.api.script([Behaviour(Mode.SERVER_ERROR)])
    message = await posted(h, h.alice, png())
    rec = await edit(h, message, h.bob)
    answer = await refusal(rec, timeout=15)
    assert "refunded 100 coins" in answer.content
    assert await h.balance(h.bob) == 300
    assert await jobs(h) == [("image", "FAILED")]
    refunds = await h.app.db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND'"
    )
    assert refunds == 1
    await assert_ledger_consistent(h.app.db)


async def test_the_servers_rules_apply_as_for_generate(harness: Harness) -> None:
    """The blocklist, the channels and the empty instruction: refused privately, for free."""
    h = harness
    await settings(h, "blocklist add", {"entry": "forbidden"})
    message = await posted(h, h.alice, png())
    rec = await edit(h, message, h.alice, "something forbidden")
    answer = await refusal(rec)
    assert answer.ephemeral and h.api.requests == []
    rec = await edit(h, message, h.alice, "   ")
    answer = await refusal(rec)
    assert "prompt is empty" in answer.content.lower() or "empty" in answer.content
    assert await h.balance(h.alice) == 300


async def test_in_the_other_server_the_moderator_deletes_what_a_member_made(
    harness: Harness,
) -> None:
    """Two servers: owner2 (a moderator in Other Club) may delete the edit alice made there,
    bob (a member) may not; each server's wallet pays for its own edits."""
    h = harness
    h.fake.add_member(h.other, h.alice)
    h.fake.add_member(h.other, h.bob)
    message = await posted(h, h.bob, png(), channel=h.other.default_channel)
    rec = await edit(h, message, h.alice, "add a hat")
    result = await rec.wait_original(has_image, timeout=15)
    await h.settle()
    assert await h.balance(h.alice, h.other) == 200 and await h.balance(h.alice) == 300
    refused = await h.fake.click(result, label="Delete", user=h.bob)
    answer = await refused.wait_original(lambda m: bool(m.content), timeout=10)
    assert answer.ephemeral and "isn't yours" in answer.content
    await confirm_delete(h, result, h.owner2)
    assert await h.rows("images") == 0
