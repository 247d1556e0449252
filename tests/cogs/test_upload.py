"""/upload end to end: stored with a thumbnail, bad files refused with nothing left behind."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from tests.cogs.conftest import Harness, png


async def test_upload_stores_and_replies_with_embed(harness: Harness) -> None:
    image = png(120, 90, "purple")
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(image, "cat.png"), "title": "My cat",
                   "description": "on the sofa"}, user=harness.alice,
    )  # fmt: skip
    message = await rec.wait_original()
    assert message.ephemeral
    text = message.embed_text()
    assert "My cat" in text and "120×90" in text and "on the sofa" in text
    assert "thumbnail.webp" in message.filenames
    assert [b["label"] for b in message.buttons()] == ["Edit", "Delete"]
    objects = await harness.objects()
    assert len(objects) == 2 and any(k.startswith("thumbnails/") for k in objects)
    assert await harness.rows("images") == 1


async def test_upload_strips_gps_metadata(harness: Harness) -> None:
    exif = PILImage.Exif()
    exif[0x8825] = {2: (48.0, 51.0, 30.0)}  # GPSLatitude
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 40), "white").save(buffer, "JPEG", exif=exif)
    assert b"Exif" in buffer.getvalue()
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(buffer.getvalue(), "p.jpg")}, user=harness.alice
    )
    reply = await rec.wait_original()
    assert "40×40" in reply.embed_text(), reply.text
    key = next(k for k in await harness.objects() if k.startswith("images/"))
    stored = await harness.app.store.get(key)
    assert b"Exif" not in stored


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "phrase"),
    [
        (b"", "empty.png", "image/png", "is empty"),
        (b"%PDF-1.7 not an image", "doc.png", "image/png", "isn't an image"),
        (png()[:70], "cut.png", "image/png", "damaged"),
        (b"\x89PNG" + b"\x00" * 1_000_001, "huge.png", "image/png", "the limit is"),
    ],
)
async def test_bad_uploads_leave_nothing(
    harness: Harness, data: bytes, filename: str, content_type: str, phrase: str
) -> None:
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(data, filename, content_type)}, user=harness.alice
    )
    message = await rec.wait_original()
    assert message.ephemeral and phrase in message.content, message.content
    assert await harness.rows("images") == 0
    assert await harness.objects() == []
    assert await harness.balance(harness.alice) == 300


async def test_upload_with_overlong_title(harness: Harness) -> None:
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(png(), "a.png"), "title": "t" * 101},
        user=harness.alice, validate=False,
    )  # fmt: skip
    message = await rec.wait_original()
    assert message.ephemeral and "at most 100 characters" in message.content
    assert await harness.objects() == []


async def test_upload_cost_is_charged_and_refused_when_broke(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(upload_cost=200)
    image = harness.fake.upload(png(), "a.png")
    first = await harness.fake.slash("upload", {"image": image}, user=harness.alice)
    assert "100" in (await first.wait_original()).embed_text()
    second = await harness.fake.slash("upload", {"image": image}, user=harness.alice)
    message = await second.wait_original()
    assert "You need 200 coins but have 100" in message.content
    assert await harness.rows("images") == 1


async def test_upload_cooldown_says_when_to_retry(harness: Harness) -> None:
    for n in range(5):
        rec = await harness.fake.slash(
            "upload", {"image": harness.fake.upload(png(20 + n, 20), "a.png")}, user=harness.bob
        )
        await rec.wait_original()
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(png(), "b.png")}, user=harness.bob
    )
    message = await rec.wait_original()
    assert message.ephemeral and "Slow down! Try again in" in message.content
    assert await harness.rows("images") == 5


async def test_storage_failure_is_explained_and_leaves_nothing(harness: Harness) -> None:
    from storage.objects import LocalObjectStore
    from tests.fakes.flaky_store import FlakyStore

    await harness.stop_bot()
    local = LocalObjectStore(harness.settings.local_storage_dir)
    await harness.start_bot(store=FlakyStore(local, fail_put=lambda k: k.startswith("thumb")))
    rec = await harness.fake.slash(
        "upload", {"image": harness.fake.upload(png(), "a.png")}, user=harness.alice
    )
    message = await rec.wait_original()
    assert message.ephemeral and "Saving the image failed" in message.content
    assert await harness.rows("images") == 0 and await local.list() == []
