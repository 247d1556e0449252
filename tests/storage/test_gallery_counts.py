"""The gallery counters (0006_gallery_counters) always equal a real COUNT of finished images,
per member, server and type, whatever mix of jobs, extras, uploads, failures and deletes."""

from __future__ import annotations

import random

import pytest

from storage.db import Database
from storage.errors import InvalidTransition
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobRepository
from storage.models import ImageStatus, ImageType
from storage.users import UserRepository
from tests.storage.helpers import member, paid_job

STORED = StoredObject("images/u/1-x.png", None, "thumbnails/u/1-x.webp", None)
GUILDS = (None, 111, 222)


async def assert_counts_match(db: Database, images: ImageRepository, user_ids: list[str]) -> None:
    """Every counter row equals COUNT(*), and count_by_user agrees with COUNT for every
    filter the gallery uses (a server's gallery, a DM's: all servers; each type or both)."""
    counters = {
        (r["user_id"], r["guild_id"], r["type"]): r["count"]
        for r in await db.fetchall("SELECT user_id, guild_id, type, count FROM gallery_counts")
    }
    real = {
        (r["user_id"], r["g"], r["type"]): r["n"]
        for r in await db.fetchall(
            "SELECT user_id, COALESCE(guild_id, '') AS g, type, COUNT(*) AS n FROM images "
            "WHERE status = 'COMPLETED' GROUP BY 1, 2, 3"
        )
    }
    assert {k: v for k, v in counters.items() if v} == real
    for user_id in user_ids:
        for guild in GUILDS:
            for kind in (None, ImageType.GENERATED, ImageType.UPLOADED):
                where = "user_id = ? AND status = 'COMPLETED'"
                params: list[object] = [user_id]
                if guild is not None:
                    where += " AND guild_id = ?"
                    params.append(str(guild))
                if kind is not None:
                    where += " AND type = ?"
                    params.append(kind.value)
                expected = await db.fetchval(f"SELECT COUNT(*) FROM images WHERE {where}", params)
                assert await images.count_by_user(user_id, kind, guild_id=guild) == expected


async def test_counters_follow_every_change(
    db: Database, users: UserRepository, images: ImageRepository
) -> None:
    rng = random.Random(10)
    people = [await member(db, n, 10**9) for n in range(1, 4)]
    wallets = {user.id: wallet for user, wallet in people}
    members = {user.id: user for user, _ in people}
    jobs = JobRepository(db)
    user_ids = list(wallets)
    made: list[str] = []
    for step in range(160):
        user_id = rng.choice(user_ids)
        guild = rng.choice(GUILDS)
        action = rng.random()
        if action < 0.35:
            job = await paid_job(
                db, members[user_id], wallets[user_id], 1, prompt=f"p{step}", guild_id=guild,
                lease_owner="p1", processing=True,
            )  # fmt: skip
            extras: list[tuple[StoredObject, dict[str, object]]] = [
                (STORED, {}) for _ in range(rng.randrange(3))
            ]
            done, extra_rows = await images.complete_with_extras(job.id, STORED, {}, extras)
            made += [done.id, *(row.id for row in extra_rows)]
        elif action < 0.5:
            # A failed job makes no image: nothing to count, nothing to delete.
            job = await paid_job(
                db, members[user_id], wallets[user_id], 1, prompt=f"p{step}", guild_id=guild,
                lease_owner="p1", processing=rng.random() < 0.5,
            )  # fmt: skip
            assert await jobs.fail_and_refund(job.id, "failed") is not None
            assert await images.get(job.id) is None
        elif action < 0.75:
            upload, _ = await images.create_upload(
                user_id=user_id, wallet_id=wallets[user_id].id, cost=0, stored=STORED,
                metadata={}, guild_id=guild,
            )  # fmt: skip
            made.append(upload.id)
        elif made:
            victim = made.pop(rng.randrange(len(made)))
            assert await images.delete(victim)
            assert not await images.delete(victim)  # a second delete changes nothing
        if step % 20 == 0:
            await assert_counts_match(db, images, user_ids)
    await assert_counts_match(db, images, user_ids)
    # A member who leaves takes their counters with them.
    gone = user_ids[0]
    await db.execute("DELETE FROM users WHERE id = ?", (gone,))
    assert await db.fetchval("SELECT COUNT(*) FROM gallery_counts WHERE user_id = ?", (gone,)) == 0
    await assert_counts_match(db, images, user_ids[1:])


async def test_the_migration_counts_existing_images(tmp_path: object) -> None:
    from pathlib import Path

    from storage.db import load_migrations

    assert isinstance(tmp_path, Path)
    from storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(tmp_path / "old.db")
    await db.connect()
    try:
        before = [m for m in load_migrations() if m.version < 6]
        await db.migrate(before)
        # A member as that schema had them (today's repositories write newer columns).
        await db.execute(
            "INSERT INTO users (id, discord_id, created_at, updated_at) "
            "VALUES ('u1', '1', '2026-01-01', '2026-01-01')"
        )
        user = await UserRepository(db).get("u1")
        assert user is not None
        for n, (guild, kind, status) in enumerate(
            [(None, "UPLOADED", "COMPLETED"), ("5", "GENERATED", "COMPLETED"),
             ("5", "GENERATED", "COMPLETED"), ("5", "GENERATED", "FAILED")]
        ):  # fmt: skip
            await db.execute(
                "INSERT INTO images (id, user_id, type, status, metadata, created_at, updated_at,"
                " guild_id) VALUES (?, ?, ?, ?, '{}', '2026-01-01', '2026-01-01', ?)",
                (f"id-{n}", user.id, kind, status, guild),
            )
        await db.migrate()
        images = ImageRepository(db)
        await assert_counts_match(db, images, [user.id])
        assert await images.count_by_user(user.id) == 3
        # (The failed row became a job in 0010: no image row is left of it to count.)
        assert await db.fetchval("SELECT COUNT(*) FROM images") == 3
        assert await images.count_by_user(user.id, guild_id=5) == 2
    finally:
        await db.close()


async def test_completing_again_after_a_lost_commit_changes_nothing(
    db: Database, images: ImageRepository
) -> None:
    """A retried `complete_with_extras` whose first COMMIT did land (its answer lost with the
    connection) returns the same rows and counts nothing twice; another image is refused."""
    user, wallet = await member(db, 1, 1000)
    job = await paid_job(db, user, wallet, 1, guild_id=111, lease_owner="p1", processing=True)
    extras: list[tuple[StoredObject, dict[str, object]]] = [
        (StoredObject(f"images/u/extra-{n}.png", None, None, None), {"index": n}) for n in (1, 2)
    ]
    first = await images.complete_with_extras(job.id, STORED, {"a": 1}, extras)
    again = await images.complete_with_extras(job.id, STORED, {"a": 1}, extras)
    assert again[0].id == first[0].id and again[0].status is ImageStatus.COMPLETED
    assert [e.id for e in again[1]] == [e.id for e in first[1]]
    assert await images.count_by_user(user.id, guild_id=111) == 3
    await assert_counts_match(db, images, [user.id])
    other = StoredObject("images/u/other.png", None, None, None)
    with pytest.raises(InvalidTransition):
        await images.complete_with_extras(job.id, other, {}, ())
