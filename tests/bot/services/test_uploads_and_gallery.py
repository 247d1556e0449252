"""UploadService and GalleryService over SQLite and a local store, across two servers."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from PIL import Image as PILImage

from bot.config import EconomyScope
from bot.nanobanana import NanobananaClient
from bot.services.errors import (
    ImageNotFound,
    InvalidInput,
    NotAllowed,
    NotEnoughCoins,
    UserFacingError,
)
from bot.services.gallery import PAGE_SIZE, GalleryService
from bot.services.generation import GenerationRequest, Job, Result
from bot.services.members import Payer
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.uploads import UploadService
from storage.images import ImageRepository
from storage.models import ImageType, User
from storage.objects import LocalObjectStore
from storage.users import UserRepository
from tests.bot.services.conftest import RecordingListener, coins_of, payer_for
from tests.bot.services.test_generation import make_service
from tests.fakes.flaky_store import FlakyStore
from tests.storage.helpers import assert_ledger_consistent

GUILD_A, GUILD_B = 9001, 9002


def png(width: int = 64, height: int = 48, colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def actor(
    user: User | None, guild_id: int | None, *, manages: bool = False, admin: bool = False
) -> Actor:
    discord_id = user.discord_id if user and user.discord_id else 999
    identity = Identity(discord_id, "x", guild_id=guild_id, can_manage_guild=manages)
    return Actor(identity, user, admin)


@pytest.fixture
async def user(users: UserRepository) -> Payer:
    return await payer_for(users.db, 1, 100, cost=10, guild_id=GUILD_A)


@pytest.fixture
def uploads(images: ImageRepository, local_store: LocalObjectStore) -> UploadService:
    return UploadService(images=images, store=local_store, max_bytes=1_000_000)


@pytest.fixture
def gallery(
    images: ImageRepository, users: UserRepository, local_store: LocalObjectStore
) -> GalleryService:
    permissions = PermissionService(scope=EconomyScope.GUILD)
    return GalleryService(images=images, users=users, store=local_store, permissions=permissions)


async def test_upload_stores_image_and_thumbnail(
    uploads: UploadService, user: Payer, local_store: LocalObjectStore, users: UserRepository
) -> None:
    result = await uploads.upload(user, png(), filename="cat.png", title=" Cat ", description="")
    image = result.image
    assert image.title == "Cat" and image.description is None and image.is_uploaded
    assert image.dimensions == (64, 48) and image.metadata["aspect_ratio"] == "4:3"
    assert image.guild_id == GUILD_A and image.wallet_id == user.wallet_id
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
    images: ImageRepository, local_store: LocalObjectStore, user: Payer, users: UserRepository,
    data: bytes, key: str,
) -> None:  # fmt: skip
    uploads = UploadService(
        images=images, store=local_store, max_bytes=1_000_000, max_pixels=1_000_000
    )
    with pytest.raises(InvalidInput) as info:
        await uploads.upload(user, data, filename="x.png")
    assert info.value.key.split(".")[0] == "image"
    if key != "image.not_image":
        assert info.value.key == key
    assert await local_store.list() == []
    assert await images.count_by_user(user.user_id, status=None) == 0
    assert await coins_of(users.db, user) == 100


async def test_upload_too_large_and_text_limits(
    images: ImageRepository, local_store: LocalObjectStore, user: Payer
) -> None:
    small = UploadService(images=images, store=local_store, max_bytes=2048)
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
    poor = await payer_for(users.db, 5, 5, cost=10)
    uploads = UploadService(images=images, store=local_store, max_bytes=10**6)
    with pytest.raises(NotEnoughCoins):
        await uploads.upload(poor, png(), filename="a.png")
    rich = await payer_for(users.db, 6, 50, cost=10)
    flaky = FlakyStore(local_store, fail_put=lambda key: key.startswith("thumbnails/"))
    failing = UploadService(images=images, store=flaky, max_bytes=10**6)
    with pytest.raises(UserFacingError) as info:
        await failing.upload(rich, png(), filename="a.png")
    assert info.value.key == "reason.storage"
    assert await local_store.list() == []
    assert await coins_of(users.db, rich) == 50


async def test_gallery_pages_sheet_open_and_delete(
    uploads: UploadService, images: ImageRepository, local_store: LocalObjectStore,
    users: UserRepository, gallery: GalleryService,
) -> None:  # fmt: skip
    payer = await payer_for(users.db, 7, 1000, cost=0, guild_id=GUILD_A)
    owner = await users.get(payer.user_id)
    other = await users.create(discord_id=8)
    assert owner is not None
    for n in range(11):
        await uploads.upload(payer, png(32 + n, 32), filename=f"{n}.png")
    me = actor(owner, GUILD_A)
    first = await gallery.page(me, owner)
    assert len(first.images) == PAGE_SIZE and first.total == 11 and first.pages == 2
    assert first.sheet is not None and first.sheet.startswith(b"\xff\xd8")
    second = await gallery.page(me, owner, cursor=first.next_cursor, page_number=2)
    assert len(second.images) == 2 and second.next_cursor is None
    assert not {i.id for i in first.images} & {i.id for i in second.images}
    assert (await gallery.page(me, owner, ImageType.GENERATED)).images == []
    target = first.images[0]
    opened = await gallery.open(me, target.short_id)
    assert opened.data == await local_store.get(target.storage_key)  # type: ignore[arg-type]
    assert opened.actions.remix and opened.actions.delete
    context = await gallery.context(target.id)
    assert context is not None and context.owner_discord_id == 7
    with pytest.raises(NotAllowed):
        await gallery.delete(actor(other, GUILD_A), context)
    # A moderator of the image's own server, acting there, may delete it.
    await gallery.delete(actor(other, GUILD_A, manages=True), context)
    assert await images.get(target.id) is None
    assert target.storage_key not in await local_store.list()
    with pytest.raises(ImageNotFound):
        await gallery.open(me, target.id)


async def test_other_servers_images_are_out_of_reach(
    uploads: UploadService, users: UserRepository, gallery: GalleryService
) -> None:
    payer = await payer_for(users.db, 1, 0, cost=0, guild_id=GUILD_A)
    owner = await users.get(payer.user_id)
    assert owner is not None
    image = (await uploads.upload(payer, png(), filename="a.png")).image
    context = await gallery.context(image.id)
    assert context is not None
    # Manage Server in server B means nothing for server A's images.
    b_moderator = actor(await users.create(discord_id=2), GUILD_B, manages=True)
    assert (await gallery.page(b_moderator, owner)).images == []
    with pytest.raises(ImageNotFound):
        await gallery.open(b_moderator, image.short_id)
    with pytest.raises(ImageNotFound):
        await gallery.delete(b_moderator, context)
    # In server A, members see it; in a DM, only its owner (and bot admins).
    a_member = actor(await users.create(discord_id=3), GUILD_A)
    assert (await gallery.open(a_member, image.short_id)).actions.delete is False
    assert len((await gallery.page(actor(owner, None), owner)).images) == 1
    with pytest.raises(NotAllowed):
        await gallery.page(actor(None, None), owner)
    admin = actor(None, None, admin=True)
    assert (await gallery.open(admin, image.id)).actions.delete
    # The owner can't remix it from another server or from a DM.
    opened_elsewhere = await gallery.open(actor(owner, GUILD_B), image.short_id)
    assert not opened_elsewhere.actions.remix and opened_elsewhere.actions.delete
    assert not (await gallery.open(actor(owner, None), image.id)).actions.remix


async def test_short_ids_are_checked(
    uploads: UploadService, users: UserRepository, gallery: GalleryService
) -> None:
    payer = await payer_for(users.db, 1, 0, cost=0, guild_id=GUILD_A)
    owner = await users.get(payer.user_id)
    me = actor(owner, GUILD_A)
    with pytest.raises(InvalidInput) as info:
        await gallery.find(me, "abc")
    assert info.value.key == "gallery.bad_id"
    with pytest.raises(ImageNotFound):
        await gallery.find(me, "0123abcd")
    image = (await uploads.upload(payer, png(), filename="a.png")).image
    assert (await gallery.find(me, image.short_id.upper())).id == image.id


async def test_gallery_survives_missing_thumbnail(
    uploads: UploadService, local_store: LocalObjectStore, user: Payer, users: UserRepository,
    gallery: GalleryService,
) -> None:  # fmt: skip
    result = await uploads.upload(user, png(), filename="a.png")
    await local_store.delete(result.image.thumbnail_key)  # type: ignore[arg-type]
    owner = await users.get(user.user_id)
    assert owner is not None
    page = await gallery.page(actor(owner, GUILD_A), owner)
    assert page.sheet is not None


class ShowingListener(RecordingListener):
    """Also hears `ready`: the result is shown to the member before it is stored."""

    def __init__(self) -> None:
        super().__init__()
        self.shown = asyncio.Event()

    async def ready(self, job: Job[Any], preview: Result) -> None:
        self.shown.set()


async def test_delete_removes_the_objects_of_a_job_completed_after_its_button_loaded(
    images: ImageRepository, local_store: LocalObjectStore, users: UserRepository,
    client: NanobananaClient,
) -> None:  # fmt: skip
    """A result is shown (with its Delete button) before it is stored: a click loads the job
    as shown (no row, no objects yet), and it completes before the delete runs. The delete
    removes the objects the row has when it is deleted, so none is left without a row."""
    payer = await payer_for(users.db, 7, 1000, guild_id=GUILD_A)
    owner = await users.get(payer.user_id)
    assert owner is not None
    hold = asyncio.Event()  # the bucket is slow: nothing is stored until the test says so
    generation = make_service(images, FlakyStore(local_store, hold=hold), client)
    gallery = GalleryService(
        images=images, users=users, store=local_store,
        permissions=PermissionService(scope=EconomyScope.GUILD), unstored=generation,
    )  # fmt: skip
    await generation.start()
    try:
        listener = ShowingListener()
        job = await generation.submit(payer, GenerationRequest("p"), listener)
        await asyncio.wait_for(listener.shown.wait(), 10)
        clicked = await gallery.context(job.id)  # loaded as shown, with no objects yet
        assert clicked is not None and clicked.owner_discord_id == 7
        assert clicked.image.id == job.id and clicked.image.storage_key is None
        assert await images.get(job.id) is None
        hold.set()
        await listener.done()
        assert listener.result is not None and listener.result.image.storage_key
        assert await local_store.list() != []
        await gallery.delete(actor(owner, GUILD_A), clicked)
    finally:
        await generation.close(deadline=5)
    assert await images.get(job.id) is None
    assert await local_store.list() == []
