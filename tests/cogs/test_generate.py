"""/generate and its Reroll / Edit / Delete buttons, end to end through real discord.py."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from bot.config import EconomyScope
from bot.nanobanana.profiles import profile_for
from storage.objects import LocalObjectStore
from tests.cogs.conftest import Harness, png, refusal
from tests.fakes.discord_server import FakeMessage, FakeUser
from tests.fakes.flaky_store import FlakyStore
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


async def generate(harness: Harness, prompt: str = "a banana astronaut", **options: object):  # type: ignore[no-untyped-def]
    rec = await harness.fake.slash("generate", {"prompt": prompt, **options}, user=harness.alice)
    return rec


async def test_generate_shows_image_embed_and_buttons(harness: Harness) -> None:
    rec = await generate(harness, aspect_ratio="16:9")
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    assert not message.ephemeral
    # Today's default (Nano Banana 2.1) answers JPEG; the type is sniffed from the bytes.
    assert message.attachments[0].content_type == "image/jpeg"
    text = message.embed_text()
    assert "a banana astronaut" in text and "16:9" in text and "Cost\n100 coins" in text
    # Public: no balance, and the short id only.
    assert "Balance" not in text and "200" not in text
    labels = [b["label"] for b in message.buttons()]
    assert labels == ["Reroll", "Edit", "Variations", "Delete", "Continue in a thread"]
    assert all(cid.startswith("nb:") for cid in message.custom_ids())
    assert await harness.balance(harness.alice) == 200
    image = (await harness.app.image_repo.list_by_user(await harness.user_id(harness.alice))).items[
        0
    ]
    assert image.metadata["width"] == 256 and image.metadata["height"] == 144
    assert f"Image id: {image.short_id}" in text and image.id not in text
    assert image.guild_id == harness.guild.id and image.wallet_id is not None
    assert harness.api.requests[0].aspect_ratio == "16:9"
    assert rec.ack_latency is not None and rec.ack_latency < 3


async def test_generate_with_attachments_edits_them(harness: Harness) -> None:
    first, second = png(40, 40, "red"), png(30, 60, "blue")
    rec = await generate(
        harness, "put them together", image=harness.fake.upload(first, "a.png"),
        image2=harness.fake.upload(second, "b.png"),
    )  # fmt: skip
    await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    assert harness.api.requests[0].images == [("image/png", first), ("image/png", second)]


async def test_blocked_generation_is_refunded_privately(harness: Harness) -> None:
    harness.api.default = Behaviour(Mode.BLOCK_PROMPT, reason="PROHIBITED_CONTENT")
    rec = await generate(harness)
    message = await rec.wait_followup(timeout=10)
    assert message.ephemeral
    # The reason in plain words, never the raw code.
    assert "asks for content Google prohibits" in message.content
    assert "PROHIBITED_CONTENT" not in message.content
    assert "refunded 100 coins" in message.content
    assert rec.original is None or rec.original.deleted
    assert await harness.balance(harness.alice) == 300
    await assert_ledger_consistent(harness.app.db)


@pytest.mark.parametrize(
    ("behaviour", "phrase"),
    [
        (Mode.TEXT_ONLY, "didn't return an image"),
        (Mode.UNAVAILABLE, "unavailable"),
        (Mode.MALFORMED_JSON, "unavailable"),
        (Behaviour(Mode.BLOCK_OUTPUT, reason="IMAGE_SAFETY"), "generated image was blocked"),
    ],
)
async def test_failed_generation_is_refunded(
    harness: Harness, behaviour: Mode | Behaviour, phrase: str
) -> None:
    harness.api.default = behaviour
    rec = await generate(harness)
    message = await rec.wait_followup(timeout=10)
    assert phrase in message.content and "refunded" in message.content
    assert await harness.balance(harness.alice) == 300


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 201}, "limit is 200"),
        ({"prompt": "ok", "aspect_ratio": "7:3"}, "isn't supported"),
    ],
)
async def test_bad_prompts_are_refused_for_free(
    harness: Harness, options: dict[str, str], phrase: str
) -> None:
    rec = await harness.fake.slash("generate", options, user=harness.alice, validate=False)
    message = await rec.wait_original()
    assert message.ephemeral and phrase in message.content
    assert await harness.balance(harness.alice) == 300
    assert await harness.rows("images") == 0
    assert harness.api.requests == []


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "phrase"),
    [
        (b"", "empty.png", "image/png", "is empty"),
        (b"just some text", "lies.png", "image/png", "isn't an image"),
        (b"GIF89a" + b"\x00" * 64, "anim.gif", "image/gif", None),
        (png()[:70], "cut.png", "image/png", "damaged"),
        (b"\x00" * 1_000_001, "big.png", "image/png", "the limit is"),
    ],
)
async def test_bad_attachments_are_refused_for_free(
    harness: Harness, data: bytes, filename: str, content_type: str, phrase: str | None
) -> None:
    upload = harness.fake.upload(data, filename, content_type)
    rec = await generate(harness, "edit this", image=upload)
    message = await refusal(rec)
    assert message.ephemeral
    assert (phrase or "PNG, JPEG or WebP") in message.content, message.content
    assert await harness.balance(harness.alice) == 300
    assert await harness.rows("images") == 0
    assert await harness.objects() == []
    assert harness.api.requests == []


async def test_animated_and_bomb_attachments(harness: Harness) -> None:
    import io

    from PIL import Image as PILImage

    frames = [PILImage.new("RGB", (8, 8), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    rec = await generate(harness, "x", image=harness.fake.upload(buffer.getvalue(), "a.png"))
    assert "animated" in (await refusal(rec)).content
    bomb = io.BytesIO()
    PILImage.new("1", (12000, 12000)).save(bomb, "PNG")
    rec = await generate(harness, "x", image=harness.fake.upload(bomb.getvalue(), "bomb.png"))
    assert "too big" in (await refusal(rec)).content
    assert await harness.balance(harness.alice) == 300


async def test_insufficient_coins(harness: Harness) -> None:
    for _ in range(3):
        rec = await generate(harness)
        await rec.wait_original(has_image, timeout=10)
        await harness.settle()
    rec = await generate(harness)
    message = await rec.wait_original()
    assert message.ephemeral and "You need 100 coins but have 0" in message.content
    assert await harness.rows("images") == 3


async def test_too_many_queued_jobs(harness: Harness) -> None:
    harness.api.latency = 1.0
    recs = [await generate(harness) for _ in range(3)]
    # Handled concurrently: whichever comes third to the reservation is refused.
    originals = [await rec.wait_original() for rec in recs]
    refused = [m for m in originals if m.ephemeral]
    assert len(refused) == 1 and "2 images in progress" in refused[0].content
    for rec, message in zip(recs, originals, strict=True):
        if not message.ephemeral:
            await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    assert await harness.balance(harness.alice) == 100


async def test_status_shows_queue_position(harness: Harness) -> None:
    harness.api.latency = 0.5
    recs = [
        await harness.fake.slash("generate", {"prompt": f"p{n}"}, user=user)
        for n, user in enumerate([harness.alice, harness.bob, harness.mod])
    ]
    # Two API slots: the third job is told its place in its very first answer.
    await recs[2].wait_callback()
    first = recs[2].callbacks[0].data
    assert "Queued (position 1)" in first["content"] and not first.get("flags")
    for rec in recs:
        await rec.wait_original(has_image, timeout=10)
        await harness.settle()


async def test_generate_in_dm_is_refused(harness: Harness) -> None:
    # Global commands (no DISCORD_GUILD_IDS) are the ones a DM could reach.
    await harness.stop_bot()
    await harness.start_bot(discord_guild_ids=[])
    rec = await harness.fake.slash("generate", {"prompt": "x"}, user=harness.alice, dm=True)
    message = await rec.wait_original()
    assert message.ephemeral and "only works in a server" in message.content


async def test_reroll_is_a_new_paid_job_with_the_same_inputs(harness: Harness) -> None:
    source = png(50, 50, "green")
    rec = await generate(harness, "repaint", image=harness.fake.upload(source, "s.png"))
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    click = await harness.fake.click(message, label="Reroll", user=harness.alice)
    rerolled = await click.wait_original(has_image, timeout=10)
    await harness.settle()
    assert rerolled.id != message.id
    assert harness.api.requests[1].prompt == "repaint"
    assert harness.api.requests[1].images == [("image/png", source)]
    assert await harness.balance(harness.alice) == 100


async def test_double_clicked_reroll_charges_only_for_jobs_that_ran(harness: Harness) -> None:
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    harness.api.latency = 0.3
    clicks = await asyncio.gather(
        *(harness.fake.click(message, label="Reroll", user=harness.alice) for _ in range(3))
    )
    ran = refused = 0
    for click in clicks:
        await click.wait_callback()
        result = await click.wait_message(lambda m: has_image(m) or m.ephemeral, timeout=10)
        await harness.settle()
        if has_image(result):
            ran += 1
        else:
            refused += 1
    assert ran == 2 and refused == 1  # MAX_JOBS_PER_USER=2
    assert await harness.balance(harness.alice) == 300 - 100 * (1 + ran)
    await assert_ledger_consistent(harness.app.db)


async def test_someone_elses_buttons_say_not_yours(harness: Harness) -> None:
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    for label in ("Reroll", "Edit", "Delete"):
        click = await harness.fake.click(message, label=label, user=harness.bob)
        answer = await click.wait_original()
        assert answer.ephemeral and "isn't yours" in answer.content
    assert await harness.rows("images") == 1
    assert await harness.balance(harness.alice) == 200
    assert await harness.app.accounts.find(harness.bob.id) is None  # refusals make nothing


@pytest.mark.parametrize("scope", [EconomyScope.GUILD, EconomyScope.GLOBAL])
async def test_reroll_and_edit_refusals_say_they_are_the_owners_alone(
    harness: Harness, scope: EconomyScope
) -> None:
    """Regression: a moderator (or a bot admin) pressing someone's Reroll or Edit was told
    "only <owner> or a moderator can use it", but remixing is the owner's alone; Delete's
    refusal does name moderators (they may delete), in either economy scope."""
    h = harness
    await h.stop_bot()
    await h.start_bot(economy_scope=scope, admin_user_ids=[h.bob.id])
    message = await (await generate(h)).wait_original(has_image, timeout=10)
    await h.settle()
    owner = f"<@{h.alice.id}>"
    # This server's moderator, a bot admin, and a moderator of the other server.
    for presser in (h.mod, h.bob, h.owner2):
        for label in ("Reroll", "Edit"):
            answer = await (await h.fake.click(message, label=label, user=presser)).wait_original()
            assert answer.ephemeral
            assert f"only {owner} can reroll or edit this image" in answer.content
            assert "moderator" not in answer.content
    delete = await (await h.fake.click(message, label="Delete", user=h.owner2)).wait_original()
    assert f"only {owner} or a moderator can use it" in delete.content
    spanish = await (
        await h.fake.click(message, label="Reroll", user=h.mod, locale="es-ES")
    ).wait_original()
    assert f"solo {owner} puede repetir o editar esta imagen" in spanish.content
    assert await h.rows("images") == 1 and await h.balance(h.alice) == 200
    assert len(h.api.requests) == 1


async def test_edit_opens_modal_and_edits_the_image(harness: Harness) -> None:
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    click = await harness.fake.click(message, label="Edit", user=harness.alice)
    modal = await click.wait_modal()
    submit = await harness.fake.submit_modal(modal, {"instruction": "make it purple"},
                                             user=harness.alice)  # fmt: skip
    edited = await submit.wait_original(has_image, timeout=10)
    await harness.settle()
    assert "make it purple" in edited.embed_text()
    request = harness.api.requests[-1]
    assert request.prompt == "make it purple"
    # The edit starts from exactly the image the member saw (the fake keeps digests), sent
    # back as the model's own earlier turn with its thought signature (multi-turn editing).
    assert hashlib.sha256(request.history_images[0][1]).hexdigest() == message.attachments[0].sha256
    assert request.signatures and request.images == []
    assert await harness.balance(harness.alice) == 100


async def test_edit_and_reroll_pressed_before_the_result_is_stored(harness: Harness) -> None:
    """Regression: results are shown before they are stored (delivery first), and Edit pressed
    at once answered "That image doesn't exist any more." Now the modal opens at once and
    the edit waits (after its answer) for the image to be stored; a Reroll pressed at once
    keeps the job's input image (stored with the result)."""
    h = harness
    await h.stop_bot()
    local = LocalObjectStore(h.settings.local_storage_dir)
    await local.open()
    bucket_slow = asyncio.Event()
    await h.start_bot(store=FlakyStore(local, hold=bucket_slow))
    source = png(40, 40, "red")
    rec = await generate(h, "a comet", image=h.fake.upload(source, "a.png"))
    shown = await rec.wait_original(has_image, timeout=10)
    # Shown, not stored yet: no image row, its job still running.
    assert not (await h.app.image_repo.list_by_user(await h.user_id(h.alice), status=None)).items
    assert await h.app.db.fetchval("SELECT status FROM jobs") == "PROCESSING"
    edit = await h.fake.click(shown, label="Edit", user=h.alice)
    modal = await edit.wait_modal(timeout=3)
    assert edit.ack_latency is not None and edit.ack_latency < 3
    reroll = await h.fake.click(shown, label="Reroll", user=h.alice)
    submit = await h.fake.submit_modal(modal, {"instruction": "make it purple"}, user=h.alice)
    for answered in (reroll, submit):
        assert not (await answered.wait_original()).ephemeral  # the job's own message
    bucket_slow.set()
    edited = await submit.wait_original(has_image, timeout=10)
    rerolled = await reroll.wait_original(has_image, timeout=10)
    await h.settle()
    assert "make it purple" in edited.embed_text() and "a comet" in rerolled.embed_text()
    by_prompt = {request.prompt: request for request in h.api.requests}
    # The edit starts from the image the member saw; the reroll from the same input.
    edited_from = by_prompt["make it purple"].history_images[0][1]  # the model's own turn
    assert hashlib.sha256(edited_from).hexdigest() == shown.attachments[0].sha256
    comets = [request for request in h.api.requests if request.prompt == "a comet"]
    assert len(comets) == 2
    assert all([data for _, data in request.images] == [source] for request in comets)
    assert await h.balance(h.alice) == 0
    await assert_ledger_consistent(h.app.db)


async def test_results_name_the_model_count_coins_and_an_edit_keeps_its_prompt(
    harness: Harness,
) -> None:
    """Regression: the result showed the model's API id and a bare cost ("Cost 100"), and an
    edit's result only its instruction under "Generated image"; the gallery said "Size: 0.0
    MB" and dated images in UTC."""
    h = harness
    message = await (await generate(h)).wait_original(has_image, timeout=10)
    await h.settle()
    text = message.embed_text()
    model = h.app.generation.catalog.default.model
    assert f"Model\n{profile_for(model).name}" in text and model not in text
    assert "Cost\n100 coins" in text
    edits = []
    for instruction in ("make it purple", "add a moon"):
        modal = await (await h.fake.click(message, label="Edit", user=h.alice)).wait_modal()
        submit = await h.fake.submit_modal(modal, {"instruction": instruction}, user=h.alice)
        message = await submit.wait_original(has_image, timeout=10)
        await h.settle()
        edits.append(message)
    first, second = (edit.embeds[0] for edit in edits)
    assert first["title"] == "Edited image"
    assert first["description"] == "**Original:** a banana astronaut\n**Edit:** make it purple"
    assert second["description"] == (
        "**Original:** a banana astronaut\n**Edit:** make it purple\n**Edit:** add a moon"
    )
    # The gallery: a human size, the model's name, a Discord timestamp, a relative date.
    rec = await h.fake.slash("gallery", {}, user=h.alice, locale="es-ES")
    page = await rec.wait_original()
    options = page.selects()[0]["options"]
    assert all(o["description"].startswith("hace ") for o in options), options
    chosen = await h.fake.select(page, page.selects()[0]["custom_id"], [options[0]["value"]],
                                 user=h.alice, locale="es-ES")  # fmt: skip
    opened = (await chosen.wait_original()).embed_text()
    size = (await h.app.image_repo.get(options[0]["value"])).metadata["size"]  # type: ignore[union-attr]
    assert size < 100_000
    assert f"Tamaño del archivo\n{round(size / 1000)} kB" in opened and "MB" not in opened
    assert "**Original:** a banana astronaut" in opened and "**Edición:** add a moon" in opened
    assert re.search(r"Creada\n<t:\d+:f>", opened) and "UTC" not in opened
    assert f"Modelo\n{profile_for(model).name}" in opened and "Coste\n100 monedas" in opened


async def test_edit_with_empty_instruction_is_refused(harness: Harness) -> None:
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    click = await harness.fake.click(message, label="Edit", user=harness.alice)
    modal = await click.wait_modal()
    submit = await harness.fake.submit_modal(modal, {"instruction": "  "}, user=harness.alice)
    answer = await submit.wait_original()
    assert answer.ephemeral and "prompt is empty" in answer.content
    assert await harness.balance(harness.alice) == 200


async def confirm_delete(harness: Harness, message: FakeMessage, user: FakeUser) -> FakeMessage:
    """Press Delete, then the private question's "Delete for good"; the question as answered."""
    asked = await (await harness.fake.click(message, label="Delete", user=user)).wait_original()
    assert asked.ephemeral and asked.buttons()
    confirm = await harness.fake.click(asked, label="Delete for good", user=user)
    await confirm.wait_for(lambda r: "deleted" in (r.target_message.content or ""))  # type: ignore[union-attr]
    assert confirm.target_message is not None
    return confirm.target_message


async def test_delete_asks_first_then_removes_row_and_objects(harness: Harness) -> None:
    """Regression: Delete was one click, with no confirmation and no word about coins (the web
    asks first). It now asks privately, saying the coins are not refunded."""
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    assert len(await harness.objects()) == 2
    asked = await (
        await harness.fake.click(message, label="Delete", user=harness.alice)
    ).wait_original()
    assert asked.ephemeral
    assert asked.content == "Delete this image for good? Its 100 coins won't be refunded."
    assert [b["label"] for b in asked.buttons()] == ["Delete for good", "Keep it"]
    # Nothing happens until it is confirmed; "Keep it" keeps it.
    keep = await harness.fake.click(asked, label="Keep it", user=harness.alice)
    await keep.wait_for(lambda r: "Kept" in (r.target_message.content or ""))  # type: ignore[union-attr]
    assert await harness.rows("images") == 1 and has_image(message) and message.buttons()
    done = await confirm_delete(harness, message, harness.alice)
    assert done.content == "🗑️ Image deleted." and not done.buttons()
    assert await harness.rows("images") == 0
    assert await harness.objects() == []
    # The result itself says so (its buttons would find nothing).
    await harness.fake.wait_for(lambda: message.content == "🗑️ Image deleted.")
    assert not has_image(message)
    assert not message.buttons() and not message.embeds
    assert await harness.balance(harness.alice) == 200  # not refunded, as it said
    spanish = await (await generate(harness)).wait_original(has_image, timeout=10)
    await harness.settle()
    asked = await (
        await harness.fake.click(spanish, label="Delete", user=harness.alice, locale="es-ES")
    ).wait_original()
    assert asked.content == "¿Borrar esta imagen para siempre? No se devuelven sus 100 monedas."


async def test_moderator_may_delete_but_not_reroll(harness: Harness) -> None:
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    reroll = await harness.fake.click(message, label="Reroll", user=harness.mod)
    content = (await reroll.wait_original()).content
    assert "isn't yours" in content and "or a moderator" not in content
    await confirm_delete(harness, message, harness.mod)
    assert await harness.rows("images") == 0


async def test_result_after_token_expiry_goes_to_the_channel(harness: Harness) -> None:
    harness.api.latency = 0.5
    rec = await generate(harness)
    await rec.wait_callback()
    harness.fake.expire(rec)
    posted = await harness.fake.wait_for_message(
        lambda m: has_image(m), channel=harness.guild.default_channel, timeout=10
    )
    assert f"<@{harness.alice.id}>" in posted.content
    assert posted.buttons()


async def test_two_edit_modals_of_one_image_are_both_answered(harness: Harness) -> None:
    """Regression (found by the reliability storm): discord.py keys open modals by custom_id,
    so a second Edit modal for the same image used to swallow the first one's submission."""
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    first = await (await harness.fake.click(message, label="Edit", user=harness.alice)).wait_modal()
    second = await (
        await harness.fake.click(message, label="Edit", user=harness.alice)
    ).wait_modal()
    answers = [
        await harness.fake.submit_modal(modal, {"instruction": text}, user=harness.alice)
        for modal, text in ((first, "first"), (second, "second"))
    ]
    for answer in answers:
        await answer.wait_original(has_image, timeout=10)
        await harness.settle()
    assert await harness.balance(harness.alice) == 0


async def test_result_is_downscaled_to_the_upload_limit(harness: Harness) -> None:
    harness.api.image_size = 1024
    harness.fake.attachment_size_limit = 20_000
    rec = await generate(harness)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    (attachment,) = message.attachments
    assert attachment.size <= 20_000 and not attachment.filename.endswith(".png")
    # The stored original keeps full quality; only the Discord copy was shrunk.
    image = (await harness.app.image_repo.list_all(limit=1)).items[0]
    assert image.metadata["width"] == 1024 and image.metadata["size"] > 20_000
