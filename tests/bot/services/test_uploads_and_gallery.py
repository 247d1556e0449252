"""UploadService and GalleryService over SQLite and a local store."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from bot.services.errors import (
    ImageNotFound,
    InvalidInput,
    NotAllowed,
    NotEnoughCoins,
    UserFacingError,
)
from bot.services.gallery import PAGE_SIZE, GalleryService
from bot.services.uploads import UploadService
from storage.images import ImageRepository
from storage.models import ImageType, User
from storage.objects import LocalObjectStore
from storage.users import UserRepository
from tests.fakes.flaky_store import FlakyStore
from tests.storage.helpers import assert_ledger_consistent


def png(width: int = 64, height: int = 48, colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def user(users: UserRepository) -> User:
    return await users.create(discord_id=1, starter_coins=100)


@pytest.fixture
def uploads(images: ImageRepository, local_store: LocalObjectStore) -> UploadService:
    return UploadService(images=images, store=local_store, cost=10, max_bytes=1_000_000)


async def test_upload_stores_image_and_thumbnail(
    uploads: UploadService, user: User, local_store: LocalObjectStore, users: UserRepository
) -> None:
    result = await uploads.upload(user, png(), filename="cat.png", title=" Cat ", description="")
    image = result.image
    assert image.title == "Cat" and image.description is None and image.is_uploaded
    assert image.dimensions == (64, 48) and image.metadata["aspect_ratio"] == "4:3"
    assert result.balance == 90
    assert set(await local_store.list()) == {image.storage_key, image.thumbnail_key}
    await assert_ledger_consistent(users.db)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"", "image.empty"),
        (b"hello, I am text", "image.not_image"),
        (png()[:60], "image.corrupt"),
        (b"GIF89a" + b"\x00" * 40, "image.not_image"),
        (png(2000, 1000), "image.too_many_pixels"),
    ],
)
async def test_bad_uploads_leave_nothing(
    images: ImageRepository, local_store: LocalObjectStore, user: User, users: UserRepository,
    data: bytes, key: str,
) -> None:  # fmt: skip
    uploads = UploadService(
        images=images, store=local_store, cost=10, max_bytes=1_000_000, max_pixels=1_000_000
    )
    with pytest.raises(InvalidInput) as info:
        await uploads.upload(user, data, filename="x.png")
    assert info.value.key.split(".")[0] == "image"
    if key != "image.not_image":
        assert info.value.key == key
    assert await local_store.list() == []
    assert await images.count_by_user(user.id, status=None) == 0
    assert (await users.get(user.id)).coins == 100  # type: ignore[union-attr]


async def test_upload_too_large_and_text_limits(
    images: ImageRepository, local_store: LocalObjectStore, user: User
) -> None:
    small = UploadService(images=images, store=local_store, cost=0, max_bytes=2048)
    with pytest.raises(InvalidInput) as info:
        await small.upload(user, png(400, 400, "blue") + b"\x00" * 4096, filename="big.png")
    assert info.value.key == "image.too_large"
    with pytest.raises(InvalidInput):
        small.validate_text("t" * 101, None)
    with pytest.raises(InvalidInput):
        small.validate_text(None, "d" * 1001)


async def test_upload_without_coins_and_storage_failure(
    images: ImageRepository, local_store: LocalObjectStore, users: UserRepository
) -> None:
    poor = await users.create(discord_id=5, starter_coins=5)
    uploads = UploadService(images=images, store=local_store, cost=10, max_bytes=10**6)
    with pytest.raises(NotEnoughCoins):
        await uploads.upload(poor, png(), filename="a.png")
    rich = await users.create(discord_id=6, starter_coins=50)
    flaky = FlakyStore(local_store, fail_put=lambda key: key.startswith("thumbnails/"))
    failing = UploadService(images=images, store=flaky, cost=10, max_bytes=10**6)
    with pytest.raises(UserFacingError) as info:
        await failing.upload(rich, png(), filename="a.png")
    assert info.value.key == "reason.storage"
    assert await local_store.list() == []
    assert (await users.get(rich.id)).coins == 50  # type: ignore[union-attr]


async def test_gallery_pages_sheet_open_and_delete(
    uploads: UploadService, images: ImageRepository, local_store: LocalObjectStore,
    users: UserRepository,
) -> None:  # fmt: skip
    owner = await users.create(discord_id=7, starter_coins=1000)
    other = await users.create(discord_id=8)
    for n in range(11):
        await uploads.upload(owner, png(32 + n, 32), filename=f"{n}.png")
    gallery = GalleryService(images=images, store=local_store)
    first = await gallery.page(owner.id)
    assert len(first.images) == PAGE_SIZE and first.total == 11 and first.pages == 2
    assert first.sheet is not None and first.sheet.startswith(b"\x89PNG")
    second = await gallery.page(owner.id, cursor=first.next_cursor, page_number=2)
    assert len(second.images) == 2 and second.next_cursor is None
    assert not {i.id for i in first.images} & {i.id for i in second.images}
    assert (await gallery.page(owner.id, ImageType.GENERATED)).images == []
    opened = await gallery.open(first.images[0].id)
    assert opened.data == await local_store.get(first.images[0].storage_key)  # type: ignore[arg-type]
    target = first.images[0]
    with pytest.raises(NotAllowed):
        await gallery.delete(target.id, actor_user_id=other.id, actor_is_admin=False)
    await gallery.delete(target.id, actor_user_id=other.id, actor_is_admin=True)
    assert await images.get(target.id) is None
    assert target.storage_key not in await local_store.list()
    with pytest.raises(ImageNotFound):
        await gallery.open(target.id)
    with pytest.raises(ImageNotFound):
        await gallery.delete(target.id, actor_user_id=owner.id, actor_is_admin=False)


async def test_gallery_survives_missing_thumbnail(
    uploads: UploadService, images: ImageRepository, local_store: LocalObjectStore, user: User
) -> None:
    result = await uploads.upload(user, png(), filename="a.png")
    await local_store.delete(result.image.thumbnail_key)  # type: ignore[arg-type]
    page = await GalleryService(images=images, store=local_store).page(user.id)
    assert page.sheet is not None
