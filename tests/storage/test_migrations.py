"""Upgrading a database made by the release before servers were tenants loses nothing.

`tests/fixtures/v1_bot.db` was written by that release's own code (see
tests/fixtures/make_v1_database.py): balances, ledger rows, generated and uploaded images,
refunds, grants, and jobs a crash left unfinished. (The upgrade from the release before
issue 21, on both backends: test_upgrade_jobs.py.)
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from storage.db import Database, load_migrations
from storage.jobs import JobRepository, JobStatus
from storage.models import TransactionKind
from storage.sqlite import SQLiteDatabase
from storage.wallets import WalletRepository
from tests.storage.helpers import all_jobs, assert_ledger_consistent

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v1_bot.db"
GUILD_A, GUILD_B = 900000000000000001, 900000000000000002


def snapshot(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables the upgrade touches, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            table: [dict(r) for r in conn.execute(f"SELECT rowid AS seq, * FROM {table} {order}")]
            for table, order in (
                ("users", "ORDER BY rowid"),
                ("coin_transactions", "ORDER BY rowid"),
                ("images", "ORDER BY rowid"),
                ("bot_state", ""),
            )
        }
    finally:
        conn.close()


async def upgraded(tmp_path: Path) -> tuple[Database, dict[str, list[dict[str, Any]]]]:
    path = tmp_path / "bot.db"
    shutil.copy(FIXTURE, path)
    before = snapshot(path)
    db = SQLiteDatabase(path)
    await db.connect()
    applied = await db.migrate()
    assert [m.version for m in applied] == [m.version for m in load_migrations()][1:]
    return db, before


async def test_every_balance_ledger_row_and_image_survives(tmp_path: Path) -> None:
    db, before = await upgraded(tmp_path)
    try:
        assert await db.fetchval("PRAGMA integrity_check") == "ok"
        assert await db.fetchall("PRAGMA foreign_key_check") == []
        wallets = {r["user_id"]: dict(r) for r in await db.fetchall("SELECT * FROM wallets")}
        rows = {r["id"]: dict(r) for r in await db.fetchall("SELECT * FROM coin_transactions")}
        images = {r["id"]: dict(r) for r in await db.fetchall("SELECT * FROM images")}
        users = {r["id"]: dict(r) for r in await db.fetchall("SELECT * FROM users")}

        # Users: every identity, unchanged but for the balance that moved to a wallet.
        assert len(users) == len(before["users"]) == 7
        with_money = set()
        for old in before["users"]:
            new = users[old["id"]]
            assert {k: new[k] for k in new} == {k: old[k] for k in new}
            assert "coins" not in new
            has_rows = any(t["user_id"] == old["id"] for t in before["coin_transactions"])
            if old["coins"] or has_rows:
                with_money.add(old["id"])
                wallet = wallets[old["id"]]
                assert wallet["coins"] == old["coins"]
                assert wallet["guild_id"] is None and wallet["carried_over"] == 1
            else:
                assert old["id"] not in wallets  # nothing to carry: a new member everywhere
        assert set(wallets) == with_money and len(with_money) == 6

        # The ledger: every row, same values, same order, in its member's wallet.
        assert len(rows) == len(before["coin_transactions"]) == 17
        finished = {i["id"] for i in before["images"] if i["status"] == "COMPLETED"}
        for old in before["coin_transactions"]:
            new = rows[old["id"]]
            assert new["seq"] == old["seq"]
            for column in ("user_id", "delta", "balance_after", "kind", "actor_id", "reason",
                           "created_at"):  # fmt: skip
                assert new[column] == old[column], column
            assert new["wallet_id"] == wallets[old["user_id"]]["id"]
            # A charge or refund names its job (0010); an image only while it exists.
            paid_for = old["kind"] in ("GENERATION", "REFUND")
            assert new["job_id"] == (old["image_id"] if paid_for else None)
            assert new["image_id"] == (old["image_id"] if old["image_id"] in finished else None)
        await assert_ledger_consistent(db)

        # Images: every finished row and column, plus their server and the wallet that paid.
        assert len(before["images"]) == 9 and len(images) == len(finished) == 6
        for old in before["images"]:
            if old["id"] not in finished:
                assert old["id"] not in images  # it lives on as a job (below)
                continue
            new = images[old["id"]]
            assert {k: new[k] for k in old if k != "seq"} == {k: v for k, v in old.items()
                                                            if k != "seq"}  # fmt: skip
            assert new["wallet_id"] == wallets[old["user_id"]]["id"]
            if old["type"] == "GENERATED":
                assert new["guild_id"] in (str(GUILD_A), str(GUILD_B))
            else:
                assert new["guild_id"] is None  # uploads in a bot that knew two servers

        # Jobs (0010): every generated image is its job, with the same id, money and state.
        jobs = {j.id: j for j in await all_jobs(db)}
        generated = [i for i in before["images"] if i["type"] == "GENERATED"]
        assert set(jobs) == {i["id"] for i in generated} and len(jobs) == 7
        for old in generated:
            job = jobs[old["id"]]
            assert (job.kind, job.user_id) == ("image", old["user_id"])
            assert (job.status.value, job.cost) == (old["status"], old["coins_used"])
            assert job.wallet_id == wallets[old["user_id"]]["id"]
            assert job.guild_id in (GUILD_A, GUILD_B) and job.lease_owner is None
            assert job.request["prompt"] == old["prompt"]
            assert job.result == ({"image_ids": [old["id"]]} if old["id"] in finished else {})
        assert before["bot_state"] == [
            {**r, "seq": before["bot_state"][0]["seq"]}
            for r in map(dict, await db.fetchall("SELECT rowid AS seq, * FROM bot_state"))
        ]
    finally:
        await db.close()


async def test_unfinished_jobs_refund_to_the_carried_over_wallet(tmp_path: Path) -> None:
    db, before = await upgraded(tmp_path)
    try:
        jobs, wallets = JobRepository(db), WalletRepository(db)
        coins = {u["id"]: u["coins"] for u in before["users"]}
        unfinished = await jobs.list_unfinished()
        assert len(unfinished) == 2
        # Nobody's jobs (from before leases): the first sweep fails and refunds them, once.
        assert {j.id for j in await jobs.expired()} == {j.id for j in unfinished}
        for job in unfinished:
            refund = await jobs.fail_and_refund(
                job.id, "interrupted by a restart", only_if_expired=True
            )
            assert refund is not None and refund.refunded == 100
            assert refund.balance == coins[job.user_id] + 100
            assert job.wallet_id is not None and refund.job.status is JobStatus.FAILED
            assert await jobs.fail_and_refund(job.id, "again") is None
        await assert_ledger_consistent(db)

        # ECONOMY_SCOPE=guild: the first server a member uses takes the wallet over, history
        # and all, instead of a second starter gift.
        alice = next(u for u in before["users"] if u["display_name"] == "alice")
        opening = await wallets.open(alice["id"], GUILD_B, starter_coins=300,
                                     adopt_carried_over=True)  # fmt: skip
        assert opening.adopted and opening.wallet.coins == coins[alice["id"]] + 100
        history = (await wallets.transactions(opening.wallet.id, limit=50)).items
        assert history[-1].kind is TransactionKind.STARTER and len(history) == 8
        other = await wallets.open(alice["id"], GUILD_A, starter_coins=300,
                                   adopt_carried_over=True)  # fmt: skip
        assert other.created and other.wallet.coins == 300
        await assert_ledger_consistent(db)
    finally:
        await db.close()


async def test_a_one_server_database_puts_every_image_in_that_server(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    first = load_migrations()[0]
    async with SQLiteDatabase(path) as db:
        await db.migrate([first])
        await db.execute(
            "INSERT INTO users (id, discord_id, coins, created_at, updated_at) "
            "VALUES ('u1', '11', 0, 't', 't')"
        )
        for image_id, metadata in (
            ("i1", '{"context": {"guild_id": 42, "channel_id": 7}}'),
            ("i2", "{}"),
        ):
            await db.execute(
                "INSERT INTO images (id, user_id, type, status, metadata, created_at, "
                "updated_at) VALUES (?, 'u1', 'UPLOADED', 'COMPLETED', ?, 't', 't')",
                (image_id, metadata),
            )
        await db.migrate()
        guilds = {r["id"]: r["guild_id"] for r in await db.fetchall("SELECT * FROM images")}
        assert guilds == {"i1": "42", "i2": "42"}
        assert await db.fetchval("SELECT COUNT(*) FROM wallets") == 0  # never had coins
