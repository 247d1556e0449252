"""ImageRepository: lifecycle, keyset pages under concurrent inserts, reserve and refund."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from storage.errors import InsufficientCoins, InvalidCursor, InvalidTransition, NotFound
from storage.images import ImageRepository, StoredObject
from storage.models import ImageStatus, ImageType, TransactionKind
from storage.timeutil import utcnow
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.storage.helpers import assert_ledger_consistent, member

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


async def test_status_transitions(users: UserRepository, images: ImageRepository) -> None:
    user = await users.create(discord_id=1)
    image = await images.create(user_id=user.id, type=ImageType.GENERATED)
    with pytest.raises(InvalidTransition):
        await images.update_status(image.id, ImageStatus.COMPLETED)  # skips PROCESSING
    image = await images.update_status(image.id, ImageStatus.PROCESSING)
    with pytest.raises(InvalidTransition):
        await images.update_status(image.id, ImageStatus.PENDING)  # backwards
    image = await images.complete(image.id, STORED, {"width": 8, "height": 8})
    assert image.status is ImageStatus.COMPLETED and image.storage_key == STORED.storage_key
    for target in ImageStatus:
        with pytest.raises(InvalidTransition):
            await images.update_status(image.id, target)
    # The same completion again (a retry after a lost COMMIT answer) is the same result...
    assert (await images.complete(image.id, STORED, {})).id == image.id
    # ...but completing it with another image is refused.
    with pytest.raises(InvalidTransition):
        await images.complete(image.id, replace(STORED, storage_key="images/u/other.png"), {})
    with pytest.raises(NotFound):
        await images.update_status("missing", ImageStatus.PROCESSING)


async def test_reserve_debits_and_creates_pending(
    users: UserRepository, images: ImageRepository
) -> None:
    user, user_wallet = await member(users.db, 1, 300)
    image, balance = await images.reserve_generation(
        user_id=user.id,
        wallet_id=user_wallet.id,
        cost=100,
        prompt="a banana",
        metadata={"aspect_ratio": "1:1"},
    )
    assert balance == 200 and image.status is ImageStatus.PENDING and image.coins_used == 100
    page = await WalletRepository(users.db).transactions(user_wallet.id)
    assert page.items[0].kind is TransactionKind.GENERATION
    assert page.items[0].image_id == image.id
    await assert_ledger_consistent(users.db)


async def test_reserve_without_coins_writes_nothing(
    users: UserRepository, images: ImageRepository
) -> None:
    user, user_wallet = await member(users.db, 1, 50)
    with pytest.raises(InsufficientCoins) as info:
        await images.reserve_generation(
            user_id=user.id, wallet_id=user_wallet.id, cost=100, prompt="x"
        )
    assert info.value.balance == 50
    assert await images.count_by_user(user.id, status=None) == 0
    assert len((await WalletRepository(users.db).transactions(user_wallet.id)).items) == 1


async def test_refund_applies_exactly_once(users: UserRepository, images: ImageRepository) -> None:
    user, user_wallet = await member(users.db, 1, 300)
    image, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=100, prompt="x"
    )
    first, second = await asyncio.gather(
        images.fail_and_refund(image.id, "SAFETY"), images.fail_and_refund(image.id, "SAFETY")
    )
    results = [r for r in (first, second) if r is not None]
    assert len(results) == 1 and results[0].refunded == 100 and results[0].balance == 300
    assert await images.fail_and_refund(image.id, "again") is None
    failed = await images.get(image.id)
    assert failed is not None and failed.status is ImageStatus.FAILED
    assert failed.metadata["error"] == "SAFETY"
    refunds = [
        t
        for t in (await WalletRepository(users.db).transactions(user_wallet.id)).items
        if t.kind == "REFUND"
    ]
    assert len(refunds) == 1
    await assert_ledger_consistent(users.db)


async def test_completed_job_cannot_be_refunded(
    users: UserRepository, images: ImageRepository
) -> None:
    user, user_wallet = await member(users.db, 1, 300)
    image, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=100, prompt="x"
    )
    await images.update_status(image.id, ImageStatus.PROCESSING)
    await images.complete(image.id, STORED, {})
    assert await images.fail_and_refund(image.id, "late") is None
    assert (await WalletRepository(users.db).get(user_wallet.id)).coins == 200  # type: ignore[union-attr]


async def test_free_generation_has_no_ledger_rows(
    users: UserRepository, images: ImageRepository
) -> None:
    user, user_wallet = await member(users.db, 1)
    image, balance = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=0, prompt="x"
    )
    refund = await images.fail_and_refund(image.id, "boom")
    assert balance == 0 and refund is not None and refund.refunded == 0
    assert (await WalletRepository(users.db).transactions(user_wallet.id)).items == []


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
    done, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=100, prompt="a"
    )
    await images.update_status(done.id, ImageStatus.PROCESSING)
    await images.complete(done.id, STORED, {})
    failed, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=100, prompt="b"
    )
    await images.fail_and_refund(failed.id, "x")
    await images.create_upload(
        user_id=user.id, wallet_id=user_wallet.id, cost=5, stored=STORED, metadata={}
    )
    stats = await images.user_stats(user.id)
    assert (stats.generated, stats.uploaded, stats.total_images) == (1, 1, 2)
    assert stats.coins_spent == 105
    assert stats.by_status[ImageStatus.FAILED] == 1
    assert stats.newest_image is not None and stats.newest_image.is_uploaded


async def test_list_unfinished(users: UserRepository, images: ImageRepository) -> None:
    user, user_wallet = await member(users.db, 1, 1000)
    pending, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=1, prompt="a"
    )
    running, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=1, prompt="b"
    )
    await images.update_status(running.id, ImageStatus.PROCESSING)
    finished, _ = await images.reserve_generation(
        user_id=user.id, wallet_id=user_wallet.id, cost=1, prompt="c"
    )
    await images.fail_and_refund(finished.id, "x")
    left = await images.list_unfinished(before=utcnow() + timedelta(seconds=1))
    assert {i.id for i in left} == {pending.id, running.id}
    assert await images.list_unfinished(before=utcnow() - timedelta(days=1)) == []


async def test_deleting_a_user_cascades(users: UserRepository, images: ImageRepository) -> None:
    user, _wallet = await member(users.db, 1, 10)
    await images.create(user_id=user.id, type=ImageType.UPLOADED)
    await users.delete(user.id)
    assert await images.db.fetchval("SELECT COUNT(*) FROM images") == 0
    assert await images.db.fetchval("SELECT COUNT(*) FROM coin_transactions") == 0


async def test_refund_goes_back_to_the_wallet_that_paid(
    users: UserRepository, images: ImageRepository, wallets: WalletRepository
) -> None:
    user, in_a = await member(users.db, 1, 300, 9001)
    in_b = (await wallets.open(user.id, 9002, starter_coins=300)).wallet
    image, balance = await images.reserve_generation(
        user_id=user.id, wallet_id=in_a.id, cost=100, prompt="x", guild_id=9001
    )
    assert balance == 200 and image.wallet_id == in_a.id and image.guild_id == 9001
    refund = await images.fail_and_refund(image.id, "boom")
    assert refund is not None and refund.balance == 300
    assert (await wallets.get(in_b.id)).coins == 300  # type: ignore[union-attr]
    await assert_ledger_consistent(users.db)


async def test_nobody_pays_from_another_members_wallet(
    users: UserRepository, images: ImageRepository
) -> None:
    alice, _ = await member(users.db, 1, 300)
    _, bobs = await member(users.db, 2, 300)
    with pytest.raises(NotFound):
        await images.reserve_generation(user_id=alice.id, wallet_id=bobs.id, cost=1, prompt="x")
    assert await images.count_by_user(alice.id, status=None) == 0


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
