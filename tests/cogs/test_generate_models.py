"""/generate with several models and sizes, answers with several images, Pro edits through the
buttons, and the defects members met: invisible prompts, odd-shaped uploads, pings in restart
notices, oversized JPEG frames, forged grant amounts."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from PIL import Image as PILImage

from storage.jobs import JobStatus
from storage.ledger import INT64_MAX
from storage.models import ImageStatus, TransactionKind
from storage.wallets import WalletRepository
from tests.cogs.conftest import Harness, png, refusal
from tests.cogs.test_generate import has_image
from tests.fakes.discord_server import FakeMessage
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent

PRO = "gemini-3-pro-image"
NB2 = "gemini-3.1-flash-image"
NB21 = "gemini-nano-banana-2.1"
COSTS = {PRO: 150, f"{PRO}:4K": 300}


def options_of(harness: Harness, command: str) -> dict[str, dict[str, Any]]:
    synced = harness.fake.commands(harness.guild)[command]
    return {option["name"]: option for option in synced.get("options", [])}


async def with_models(harness: Harness, *models: str) -> None:
    await harness.stop_bot()
    await harness.start_bot(nanobanana_models=list(models), generation_costs=COSTS)


async def choices(
    harness: Harness, focused: str, options: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """What /generate's autocomplete offers for `focused` (from the bot's live catalog)."""
    typed = {"prompt": "x", **(options or {})}
    typed.setdefault(focused, "")
    rec = await harness.fake.autocomplete(
        "generate", typed, focused, user=harness.alice, guild=harness.guild
    )
    await rec.wait_for(lambda r: r.choices is not None)
    return list(rec.choices or [])


async def test_one_model_means_no_model_option_and_sizes_priced_live(harness: Harness) -> None:
    options = options_of(harness, "generate")
    assert list(options) == ["prompt", "aspect_ratio", "image", "image2", "size", "count"]
    # How many images (issue 23): Discord offers 1 to 4; the server's cap is checked after.
    assert (options["count"]["min_value"], options["count"]["max_value"]) == (1, 4)
    assert options["size"].get("autocomplete") is True and "choices" not in options["size"]
    ratios = [c["value"] for c in options["aspect_ratio"]["choices"]]
    assert "1:8" in ratios and "21:9" in ratios  # Nano Banana 2.1's fourteen
    sizes = await choices(harness, "size")
    assert sizes == [
        {"name": "1K · 100 coins", "value": "1K"},
        {"name": "2K · 100 coins", "value": "2K"},
        {"name": "4K · 100 coins", "value": "4K"},
    ]


async def test_several_models_bring_model_and_size_options_priced(harness: Harness) -> None:
    await with_models(harness, PRO, NB2)
    options = options_of(harness, "generate")
    assert list(options) == [
        "prompt", "aspect_ratio", "image", "image2", "model", "size", "count",
    ]  # fmt: skip
    assert options["model"].get("autocomplete") is True
    models = {c["value"]: c["name"] for c in await choices(harness, "model")}
    assert models == {
        NB21: "Nano Banana 2.1 · 100 coins",
        PRO: "Nano Banana Pro · from 150 coins",
        NB2: "Nano Banana 2 · 100 coins",
    }
    assert [c["value"] for c in await choices(harness, "model", {"model": "pro"})] == [PRO]
    # The sizes of the model picked so far, each with its cost.
    assert [c["value"] for c in await choices(harness, "size", {"model": NB2})] == [
        "512", "1K", "2K", "4K",
    ]  # fmt: skip
    assert [c["name"] for c in await choices(harness, "size", {"model": PRO})] == [
        "1K · 150 coins", "2K · 150 coins", "4K · 300 coins",
    ]  # fmt: skip
    assert "8:1" in [c["value"] for c in options["aspect_ratio"]["choices"]]


async def test_a_model_google_retires_leaves_the_choices_at_once(harness: Harness) -> None:
    await with_models(harness, PRO, NB2)
    harness.api.retire(PRO)
    rec = await harness.fake.slash(
        "generate", {"prompt": "a poster", "model": PRO}, user=harness.alice
    )
    failed = await rec.wait_followup(timeout=10)
    assert failed.ephemeral and "Google retired Nano Banana Pro" in failed.content
    assert "refunded" in failed.content
    await harness.settle()
    assert PRO not in [c["value"] for c in await choices(harness, "model")]
    again = await harness.fake.slash(
        "generate", {"prompt": "a poster", "model": PRO}, user=harness.alice, validate=False
    )
    message = await again.wait_original()
    assert message.ephemeral and "no longer offered by Google" in message.content
    assert await harness.balance(harness.alice) == 300  # the first was refunded, the second free


async def test_pro_at_4k_costs_what_is_configured(harness: Harness) -> None:
    await with_models(harness, PRO)
    rec = await harness.fake.slash(
        "generate", {"prompt": "a poster", "model": PRO, "size": "4K", "aspect_ratio": "2:3"},
        user=harness.alice,
    )  # fmt: skip
    message = await rec.wait_original(has_image, timeout=20)
    await harness.settle()
    text = message.embed_text()
    assert "4K" in text and "Nano Banana Pro" in text and PRO not in text and "300 coins" in text
    (attachment,) = message.attachments
    assert attachment.filename.endswith(".jpg")  # Pro answers JPEG
    assert attachment.content_type == "image/jpeg"
    seen = harness.api.requests[-1]
    assert (seen.model, seen.image_size, seen.aspect_ratio) == (PRO, "4K", "2:3")
    assert await harness.balance(harness.alice) == 0


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"model": PRO, "aspect_ratio": "1:8"}, "Nano Banana Pro can't make 1:8 images"),
        ({"model": PRO, "size": "512"}, "Nano Banana Pro can't make 512 images"),
        ({"size": "512"}, "Nano Banana 2.1 can't make 512 images"),
        ({"model": "imagen-4"}, "isn't offered here"),
    ],
)
async def test_what_a_model_cant_do_is_refused_for_free(
    harness: Harness, options: dict[str, str], phrase: str
) -> None:
    await with_models(harness, PRO, NB2)
    rec = await harness.fake.slash(
        "generate", {"prompt": "x", **options}, user=harness.alice, validate=False
    )
    message = await rec.wait_original()
    assert message.ephemeral and phrase in message.content, message.content
    assert await harness.balance(harness.alice) == 300
    assert await harness.rows("images") == 0 and harness.api.requests == []


async def test_every_image_of_an_answer_is_shown_and_kept(harness: Harness) -> None:
    harness.api.script([Behaviour(Mode.OK, images=3)])
    rec = await harness.fake.slash("generate", {"prompt": "three foxes"}, user=harness.alice)
    message = await rec.wait_original(has_image, timeout=20)
    await harness.settle()
    assert len(message.attachments) == 3
    rows = (await harness.app.image_repo.list_all(limit=10)).items
    assert len(rows) == 3 and all(r.status is ImageStatus.COMPLETED for r in rows)
    extras = [r for r in rows if r.metadata.get("extra_of")]
    assert len(extras) == 2 and all(r.coins_used == 0 for r in extras)
    assert all(extra.short_id in message.embed_text() for extra in extras)  # short ids
    assert await harness.balance(harness.alice) == 200
    await assert_ledger_consistent(harness.app.db)


async def test_a_pro_edit_through_the_button_keeps_its_context(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(nanobanana_model=PRO, generation_costs=COSTS)
    rec = await harness.fake.slash("generate", {"prompt": "a knight"}, user=harness.alice)
    message = await rec.wait_original(has_image, timeout=20)
    await harness.settle()
    signature = harness.api.signatures[-1]
    click = await harness.fake.click(message, label="Edit", user=harness.alice)
    modal = await click.wait_modal()
    await harness.stop_bot()  # the context survives a restart
    await harness.start_bot(nanobanana_model=PRO, generation_costs=COSTS)
    submit = await harness.fake.submit_modal(modal, {"instruction": "in winter"},
                                             user=harness.alice)  # fmt: skip
    await submit.wait_original(has_image, timeout=20)
    await harness.settle()
    seen = harness.api.requests[-1]
    assert seen.signatures == [signature] and seen.prompt == "in winter"
    assert seen.history_images and seen.images == []


# ------------------------------------------------------------------------------ defects


@pytest.mark.parametrize("prompt", ["\u200b", "\ufeff\u2060", "\u200b \u200b", "\u2800"])
async def test_invisible_prompts_are_refused_for_free(harness: Harness, prompt: str) -> None:
    rec = await harness.fake.slash("generate", {"prompt": prompt}, user=harness.alice)
    message = await rec.wait_original()
    assert message.ephemeral and "prompt is empty" in message.content
    assert await harness.balance(harness.alice) == 300
    assert await harness.rows("images") == 0 and harness.api.requests == []


async def upload(harness: Harness, data: bytes) -> FakeMessage:
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(data, "odd.png")}, user=harness.alice
    )
    return await rec.wait_original()


@pytest.mark.parametrize(("size", "ratio"), [((1366, 768), "16:9"), ((100, 37), "21:9")])
async def test_edit_of_an_odd_shaped_upload(
    harness: Harness, size: tuple[int, int], ratio: str
) -> None:
    uploaded = await upload(harness, png(*size))
    click = await harness.fake.click(uploaded, label="Edit", user=harness.alice)
    modal = await click.wait_modal()
    submit = await harness.fake.submit_modal(modal, {"instruction": "add a hat"},
                                             user=harness.alice)  # fmt: skip
    edited = await submit.wait_original(has_image, timeout=20)
    await harness.settle()
    assert ratio in edited.embed_text()
    assert harness.api.requests[-1].aspect_ratio == ratio
    assert await harness.balance(harness.alice) == 200


async def test_the_restart_notice_pings_only_the_requester(harness: Harness) -> None:
    channel = harness.guild.default_channel
    prompt = f"<@{harness.bob.id}> @everyone <@&{harness.guild.id}> **loud** a castle"
    await harness.crashed_job(harness.alice, prompt)
    await harness.stop_bot()
    await harness.start_bot()
    notice = await harness.fake.wait_for_message(
        lambda m: "interrupted by a bot restart" in m.content, channel=channel
    )
    assert notice.content.startswith(f"<@{harness.alice.id}> ")
    assert f"<@{harness.bob.id}>" not in notice.content and "@everyone" not in notice.content
    mentions = notice.last_payload["allowed_mentions"]
    assert mentions["parse"] == [] and [int(u) for u in mentions["users"]] == [harness.alice.id]
    assert not mentions.get("roles") and not mentions.get("replied_user")


def jpeg_with_huge_frame() -> bytes:
    """A JPEG whose frame header, after one stray byte, claims 60000×60000 pixels."""
    real = io.BytesIO()
    PILImage.new("RGB", (8, 8), "red").save(real, "JPEG")
    data = real.getvalue()
    sof = data.index(b"\xff\xc0")
    patched = data[: sof + 5] + struct.pack(">HH", 60000, 60000) + data[sof + 9 :]
    assert patched[2:4] == b"\xff\xe0"  # JFIF's APP0 segment comes first
    after_app0 = 4 + struct.unpack(">H", patched[4:6])[0]
    return patched[:after_app0] + b"\x00" + patched[after_app0:]  # a stray byte after it


async def test_a_jpeg_with_a_huge_frame_gets_the_real_message(harness: Harness) -> None:
    rec = await harness.fake.slash(
        "generate",
        {"prompt": "edit", "image": harness.fake.upload(jpeg_with_huge_frame(), "big.jpg")},
        user=harness.alice,
    )
    message = await refusal(rec)
    assert message.ephemeral
    assert "big.jpg is 60000×60000 pixels" in message.content, message.content
    assert "{" not in message.content
    assert await harness.balance(harness.alice) == 300 and await harness.rows("images") == 0


@pytest.mark.parametrize("amount", ["abc", 1.5, "12", None, 10**30])
async def test_forged_grant_amounts_get_a_clear_line(harness: Harness, amount: object) -> None:
    raw = {"name": "amount", "type": 4, "value": amount}
    rec = await harness.fake.slash(
        "grant", {"user": harness.alice, "amount": raw}, user=harness.mod, validate=False
    )
    message = await rec.wait_original()
    assert message.ephemeral and "whole numbers between 1 and 1000" in message.content
    assert await harness.balance(harness.alice) == 300


async def test_start_up_goes_on_when_a_leftover_refund_cannot_be_applied(harness: Harness) -> None:
    """A balance past the cap (from before it existed) used to make the start-up refund
    overflow and stop the bot; now the bot starts, records the refund owed and says so."""
    app = harness.app
    payer = await harness.payer(harness.alice)
    channel = harness.guild.default_channel
    stuck = await harness.crashed_job(harness.alice, "a castle")
    await WalletRepository(app.db).credit(
        payer.wallet_id, INT64_MAX - 300, kind=TransactionKind.GRANT
    )
    await harness.stop_bot()
    bot = await harness.start_bot()
    notice = await harness.fake.wait_for_message(
        lambda m: "couldn't refund your 100 coins automatically" in m.content, channel=channel
    )
    assert notice.content.startswith(f"<@{harness.alice.id}>") and "100 coins" in notice.content
    failed = await bot.engine.jobs.get(stuck.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.refund_owed == 100
    rec = await harness.fake.slash("generate", {"prompt": "still works"}, user=harness.bob)
    await rec.wait_original(has_image, timeout=20)
    await harness.settle()
    await assert_ledger_consistent(bot.db)
