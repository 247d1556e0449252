"""Start-up reconciliation of objects and rows."""

from __future__ import annotations

from bot.services.maintenance import reconcile_storage
from storage.images import ImageRepository, StoredObject
from storage.models import ImageStatus, ImageType
from storage.objects import LocalObjectStore
from storage.users import UserRepository


async def test_orphans_deleted_and_missing_reported(
    users: UserRepository, images: ImageRepository, local_store: LocalObjectStore
) -> None:
    user = await users.create(discord_id=1)
    kept = StoredObject("images/u/1-kept.png", None, "thumbnails/u/1-kept.webp", None)
    await images.create(
        user_id=user.id, type=ImageType.GENERATED, status=ImageStatus.COMPLETED, stored=kept,
        metadata={"input_keys": ["inputs/u/x-0.png"]},
    )  # fmt: skip
    gone = StoredObject("images/u/2-gone.png", None, None, None)
    await images.create(
        user_id=user.id, type=ImageType.UPLOADED, status=ImageStatus.COMPLETED, stored=gone
    )
    for key in (
        "images/u/1-kept.png",
        "thumbnails/u/1-kept.webp",
        "inputs/u/x-0.png",
        "images/u/3-orphan.png",
        "thumbnails/u/3-orphan.webp",
        "other/keep-me.txt",
    ):
        await local_store.put(key, b"x", "application/octet-stream")  # fmt: skip
    report = await reconcile_storage(images, local_store)
    assert report.orphans_deleted == 2
    assert report.missing_objects == ["images/u/2-gone.png"]
    assert await local_store.list() == [
        "images/u/1-kept.png", "inputs/u/x-0.png", "other/keep-me.txt",
        "thumbnails/u/1-kept.webp",
    ]  # fmt: skip
    again = await reconcile_storage(images, local_store)
    assert again.orphans_deleted == 0
