"""storage.privacy on both databases: a member's rows read for an export, and erased in one
transaction with the ledger kept under an anonymous id (every table is read afterwards);
refused, changing nothing, while a job of theirs is unfinished."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.api_tokens import ApiTokenRepository
from storage.db import Database
from storage.guild_settings import GuildSettingsRepository
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobRepository
from storage.moderation import ModerationRepository
from storage.privacy import ERASE_ACTION, JobsInProgress, erase_member, member_data
from storage.timeutil import utcnow
from storage.web_sessions import WebSessionRepository, WebSessionRow
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

GUILD = 777
SECRET = "quokka"
# A snowflake-sized id: a short one ("5005") can turn up inside a timestamp's microseconds.
DISCORD_ID = 731_405_219_866_181_632


async def all_values(db: Database) -> list[tuple[str, str, str]]:
    sql = (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        if db.dialect.is_postgres
        else "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    found = []
    for table in [r[0] for r in await db.fetchall(sql)]:
        for row in await db.fetchall(f"SELECT * FROM {table}"):
            for column in row.keys():  # noqa: SIM118 (sqlite3.Row iterates values)
                if row[column] is not None:
                    found.append((str(table), str(column), str(row[column])))
    return found


async def plant(db: Database) -> tuple[str, str]:
    """A member with an upload, a failed and refunded job, a token, a web session, a block, a
    setting they changed and a moderator's deletion of one of their images; and a second
    member. Returns (member's user id, other's user id)."""
    user, wallet = await member(db, DISCORD_ID, coins=500, guild_id=GUILD)
    other, other_wallet = await member(db, 6006, coins=500, guild_id=GUILD)
    images = ImageRepository(db)
    await images.create_upload(
        user_id=user.id, wallet_id=wallet.id, cost=10, guild_id=GUILD, title=f"{SECRET} pic",
        stored=StoredObject(f"images/{user.id}/1-a.png", None, f"thumbnails/{user.id}/1-a.webp",
                            None), metadata={"format": "png"},
    )  # fmt: skip
    await images.create_upload(
        user_id=other.id, wallet_id=other_wallet.id, cost=0, guild_id=GUILD, title="other's",
        stored=StoredObject("images/o/1-b.png", None, None, None), metadata={},
    )  # fmt: skip
    job = await paid_job(db, user, wallet, 100, prompt=f"a {SECRET}", guild_id=GUILD,
                         lease_owner="p")  # fmt: skip
    await JobRepository(db).fail_and_refund(job.id, "failed")
    await ApiTokenRepository(db).create(
        user_id=user.id, guild_id=GUILD, name=f"{SECRET}-token", token_hash="h" * 64,
        prefix="nb_x", max_active=5,
    )  # fmt: skip
    now = utcnow()
    await WebSessionRepository(db).create(
        WebSessionRow(
            "s1", DISCORD_ID, f"{SECRET} name", (GUILD,), "c", now, now + timedelta(days=1)
        )
    )
    moderation = ModerationRepository(db)
    await moderation.set_block(GUILD, user.id, until=None, actor_id=other.id, reason="spam")
    await moderation.record(
        guild_id=GUILD, actor_id=other.id, action="image_delete", target_user_id=user.id,
        image_id="x", detail={"prompt": f"a {SECRET}"},
    )  # fmt: skip
    await GuildSettingsRepository(db).change(GUILD, "upload_cost", 5, actor_id=user.id)
    return user.id, other.id


async def test_export_reads_every_row_of_theirs(db: Database) -> None:
    user_id, _ = await plant(db)
    data = await member_data(db, user_id)
    assert data is not None
    assert data.user["discord_id"] == str(DISCORD_ID)
    assert [i["title"] for i in data.images] == [f"{SECRET} pic"]
    assert [j["request"]["prompt"] for j in data.jobs] == [f"a {SECRET}"]
    assert sum(r["delta"] for r in data.ledger) == data.wallets[0]["coins"] == 490
    assert [t["name"] for t in data.api_tokens] == [f"{SECRET}-token"]
    assert "token_hash" not in data.api_tokens[0]
    assert [s["name"] for s in data.web_sessions] == [f"{SECRET} name"]
    assert data.blocks and data.blocks[0]["reason"] == "spam"


async def test_erase_keeps_an_anonymous_ledger_and_nothing_else(db: Database) -> None:
    user_id, other_id = await plant(db)
    ledger = await db.fetchall(
        "SELECT id, delta, balance_after FROM coin_transactions WHERE user_id = ? ORDER BY seq",
        (user_id,),
    )
    erasure = await erase_member(db, user_id)
    assert erasure.guild_ids == [GUILD] and len(erasure.image_ids) == 1
    assert sorted(erasure.object_keys) == sorted(
        [f"images/{user_id}/1-a.png", f"thumbnails/{user_id}/1-a.webp"]
    )
    left = [(t, c) for t, c, v in await all_values(db)
            if user_id in v or str(DISCORD_ID) in v or SECRET in v]  # fmt: skip
    assert left == []
    kept = await db.fetchall(
        "SELECT id, delta, balance_after FROM coin_transactions WHERE user_id = ? ORDER BY seq",
        (erasure.anonymous_id,),
    )
    assert [tuple(r[i] for i in range(3)) for r in kept] == [
        tuple(r[i] for i in range(3)) for r in ledger
    ]
    assert erasure.ledger_rows == len(ledger) == 4  # starter, upload, charge, refund
    await assert_ledger_consistent(db)
    audit = await db.fetchone(
        "SELECT guild_id, actor_id, target_user_id FROM moderation_actions WHERE action = ?",
        (ERASE_ACTION,),
    )
    assert audit is not None and audit[0] == str(GUILD) and audit[2] == erasure.anonymous_id
    # The other member is untouched (and their audit rows as the actor: a block, a delete).
    assert await db.fetchval("SELECT COUNT(*) FROM images WHERE user_id = ?", (other_id,)) == 1
    assert (
        await db.fetchval("SELECT COUNT(*) FROM moderation_actions WHERE actor_id = ?", (other_id,))
        == 2
    )


async def test_erase_is_refused_while_a_job_is_unfinished(db: Database) -> None:
    user_id, _ = await plant(db)
    user = await db.fetchone("SELECT id FROM users WHERE id = ?", (user_id,))
    assert user is not None
    wallet = await db.fetchval("SELECT id FROM wallets WHERE user_id = ?", (user_id,))
    await JobRepository(db).reserve(
        kind="image", user_id=user_id, wallet_id=wallet, cost=100, guild_id=GUILD,
        lease_owner="p",
    )  # fmt: skip
    before = await all_values(db)
    with pytest.raises(JobsInProgress) as refused:
        await erase_member(db, user_id)
    assert refused.value.count == 1
    assert await all_values(db) == before
