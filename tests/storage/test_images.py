"""ImageRepository: rows, what a job's completion writes, uploads, keyset pages under concurrent
inserts, statistics. (The money of jobs: test_jobs.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

from storage.errors import InsufficientCoins, InvalidCursor, InvalidTransition, NotFound
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobRepository, JobStatus
from storage.models import ImageStatus, ImageType
from storage.users import UserRepository
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

STORED = StoredObject("images/u/1-x.png", None, "thumbnails/u/1-x.webp", None)


async def test_create_get_update_delete(users: UserRepository, images: ImageRepository) -> None:
    user = await users.create(discord_id=1)
    image = await images.create(
        user_id=user.id, type=ImageType.UPLOADED, status=ImageStatus.COMPLETED, title="cat",
        stored=STORED, metadata={"width": 640, "height": 480, "size": 2 * 1024 * 1024},
    )  # fmt: skip
    assert image.is_ready and image.is_uploaded and not image.is_generated
    assert image.dimensions == (640, 480) and image.size_mb == 2.0
    assert (await images.get(image.id)) == image
    updated = await images.update(image.id, title="dog", metadata={"width": 1, "height": 2})
    assert updated.title == "dog" and updated.dimensions == (1, 2)
    with pytest.raises(ValueError, match="status"):
        await images.update(image.id, status="FAILED")
    deleted = await images.delete(image.id)
    assert deleted is not None and deleted.id == image.id
    assert await images.get(image.id) is None
    with pytest.raises(NotFound):
        await images.update(image.id, title="x")


async def test_a_jobs_images_are_written_when_it_completes(
    users: UserRepository, images: ImageRepository
) -> None:
    """An image job has no image row until it completes; then its rows (the first with the
    job's id, prompt, server, wallet and cost; the further ones pointing to it) and the job's
    completion are one transaction, idempotent for the same object and refused for another."""
    user, wallet = await member(users.db, 1, 300, 9001)
    jobs = JobRepository(users.db)
    job = await paid_job(users.db, user, wallet, 100, prompt="a banana", guild_id=9001,
                         lease_owner="p1")  # fmt: skip
    assert await images.get(job.id) is None
    with pytest.raises(InvalidTransition):  # not started: PENDING never completes
        await images.complete(job.id, STORED, {"width": 8, "height": 8})
    assert await images.get(job.id) is None
    await jobs.mark_processing(job.id, "p1")
    extra = replace(STORED, storage_key="images/u/1-x-2.png")
    image, extras = await images.complete_with_extras(
        job.id, STORED, {"width": 8, "height": 8}, [(extra, {"index": 1})], title="t"
    )
    assert image.id == job.id and image.status is ImageStatus.COMPLETED
    assert (image.prompt, image.guild_id, image.coins_used) == ("a banana", 9001, 100)
    assert image.wallet_id == wallet.id and image.title == "t"
    assert image.storage_key == STORED.storage_key and image.dimensions == (8, 8)
    [more] = extras
    assert more.metadata["extra_of"] == job.id and more.coins_used == 0
    assert (more.prompt, more.guild_id, more.wallet_id) == ("a banana", 9001, wallet.id)
    done = await jobs.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.result == {"image_ids": [job.id, more.id]}
    # The same completion again (a retry after a lost COMMIT answer) is the same result...
    again, again_extras = await images.complete_with_extras(
        job.id, STORED, {}, [(extra, {"index": 1})]
    )
    assert again == image and again_extras == extras
    # ...but completing it with another image is refused.
    with pytest.raises(InvalidTransition):
        await images.complete(job.id, replace(STORED, storage_key="images/u/other.png"), {})
    with pytest.raises(NotFound):
        await images.complete("missing", STORED, {})
    assert await images.count_by_user(user.id, guild_id=9001) == 2
    await assert_ledger_consistent(users.db)


async def test_a_failed_job_leaves_no_image_row(
    users: UserRepository, images: ImageRepository
) -> None:
    user, wallet = await member(users.db, 1, 300)
    job = await paid_job(users.db, user, wallet, 100, lease_owner="p1", processing=True)
    refund = await JobRepository(users.db).fail_and_refund(job.id, "SAFETY")
    assert refund is not None and refund.refunded == 100
    with pytest.raises(InvalidTransition):
        await images.complete(job.id, STORED, {})
    assert await images.db.fetchval("SELECT COUNT(*) FROM images") == 0
    assert await images.count_by_user(user.id, status=None) == 0
    await assert_ledger_consistent(users.db)


async def test_create_upload_debits_with_row(
    users: UserRepository, images: ImageRepository
) -> None:
    user, user_wallet = await member(users.db, 1, 30)
    image, balance = await images.create_upload(
        user_id=user.id,
        wallet_id=user_wallet.id,
        cost=10,
        stored=STORED,
        metadata={"width": 1, "height": 1},
        title="t",
    )
    assert image.status is ImageStatus.COMPLETED and balance == 20
    with pytest.raises(InsufficientCoins):
        await images.create_upload(
            user_id=user.id, wallet_id=user_wallet.id, cost=50, stored=STORED, metadata={}
        )
    assert await images.count_by_user(user.id) == 1
    await assert_ledger_consistent(users.db)


async def test_keyset_pages_are_stable_under_concurrent_inserts(
    users: UserRepository, images: ImageRepository
) -> None:
    user = await users.create(discord_id=1)
    other = await users.create(discord_id=2)
    originals = [
        (await images.create(user_id=user.id, type=ImageType.GENERATED,
                             status=ImageStatus.COMPLETED, title=str(i))).id
        for i in range(25)
    ]  # fmt: skip
    seen: list[str] = []
    cursor = None
    while True:
        page = await images.list_by_user(user.id, limit=4, cursor=cursor)
        seen += [img.id for img in page.items]
        # New rows between page reads, for this user and another one.
        for owner in (user.id, other.id):
            await images.create(
                user_id=owner, type=ImageType.GENERATED, status=ImageStatus.COMPLETED
            )
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 25
    assert seen == list(reversed(originals))


async def test_listing_filters_type_and_status(
    users: UserRepository, images: ImageRepository
) -> None:
    user = await users.create(discord_id=1)
    for image_type in (ImageType.GENERATED, ImageType.UPLOADED, ImageType.GENERATED):
        await images.create(user_id=user.id, type=image_type, status=ImageStatus.COMPLETED)
    await images.create(user_id=user.id, type=ImageType.GENERATED)  # pending: hidden
    assert len((await images.list_generated_by_user(user.id)).items) == 2
    assert len((await images.list_uploaded_by_user(user.id)).items) == 1
    assert len((await images.list_by_user(user.id)).items) == 3
    assert len((await images.list_by_user(user.id, status=None)).items) == 4
    assert len((await images.list_all(limit=10)).items) == 4
    assert await images.count_by_user(user.id, ImageType.GENERATED) == 2


async def test_bad_cursor_is_refused(users: UserRepository, images: ImageRepository) -> None:
    user = await users.create(discord_id=1)
    for cursor in ("not-a-cursor", "W10", "WzEsMl0"):
        with pytest.raises(InvalidCursor):
            await images.list_by_user(user.id, cursor=cursor)


async def test_user_stats(users: UserRepository, images: ImageRepository) -> None:
    user, user_wallet = await member(users.db, 1, 1000)
    jobs = JobRepository(users.db)
    done = await paid_job(users.db, user, user_wallet, 100, prompt="a", lease_owner="p1",
                          processing=True)  # fmt: skip
    await images.complete(done.id, STORED, {})
    failed = await paid_job(users.db, user, user_wallet, 100, prompt="b")
    await jobs.fail_and_refund(failed.id, "x")
    await images.create_upload(
        user_id=user.id, wallet_id=user_wallet.id, cost=5, stored=STORED, metadata={}
    )
    stats = await images.user_stats(user.id)
    assert (stats.generated, stats.uploaded, stats.total_images) == (1, 1, 2)
    assert stats.coins_spent == 105  # the failed job's charge came back
    # A failed job is a job, not an image: only finished images are counted.
    assert stats.by_status == {ImageStatus.COMPLETED: 2}
    assert stats.newest_image is not None and stats.newest_image.is_uploaded


async def test_deleting_a_user_cascades(users: UserRepository, images: ImageRepository) -> None:
    user, wallet = await member(users.db, 1, 10)
    await images.create(user_id=user.id, type=ImageType.UPLOADED)
    await paid_job(users.db, user, wallet, 5)
    await users.delete(user.id)
    for table in ("images", "jobs", "coin_transactions", "wallets"):
        assert await images.db.fetchval(f"SELECT COUNT(*) FROM {table}") == 0, table


async def test_server_galleries_and_short_ids(
    users: UserRepository, images: ImageRepository
) -> None:
    user = await users.create(discord_id=1)
    made = {}
    for guild in (9001, 9002, 9001):
        made[guild] = await images.create(
            user_id=user.id, type=ImageType.UPLOADED, status=ImageStatus.COMPLETED,
            guild_id=guild,
        )  # fmt: skip
    assert len((await images.list_by_user(user.id, guild_id=9001)).items) == 2
    assert len((await images.list_by_user(user.id, guild_id=9002)).items) == 1
    assert len((await images.list_by_user(user.id)).items) == 3
    assert await images.count_by_user(user.id, guild_id=9001) == 2
    image = made[9002]
    assert image.short_id == image.id[:8]
    assert [i.id for i in await images.find_by_prefix(image.short_id)] == [image.id]
    assert [i.id for i in await images.find_by_prefix(image.id)] == [image.id]
    assert await images.find_by_prefix("zz'; --") == []
    assert len(await images.find_by_prefix("")) == 0
    stats = await images.user_stats(user.id, guild_id=9001)
    assert stats.uploaded == 2
