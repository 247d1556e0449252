"""What budgets cost a reservation: `JobRepository.reserve` of a paid image job without caps,
and with the three caps (the deployment's month, the server's month and its day) checked in the
same transaction, on an empty month and on a month already holding many usage rows.

    python -m bench.bench_budgets

Prints figures; never passes or fails on time.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from storage.db import Transaction
from storage.jobs import JobRepository
from storage.sqlite import SQLiteDatabase
from storage.usage import BudgetClaim, Cap, CapKind
from storage.users import UserRepository
from storage.wallets import WalletRepository

GUILD = 123456789012345678
RESERVATIONS = 2000
TASKS = 8


def claim(capped: bool) -> BudgetClaim:
    caps = (
        (
            Cap(CapKind.USD_PER_MONTH, 10**15, "2026-03"),
            Cap(CapKind.USD_PER_MONTH, 10**15, "2026-03", GUILD),
            Cap(CapKind.IMAGES_PER_DAY, 10**9, "2026-03-09", GUILD),
        )
        if capped
        else ()
    )
    return BudgetClaim(
        guild_id=GUILD, model="gemini-2.5-flash-image", image_size=None, estimate_micros=38_703,
        day="2026-03-09", month="2026-03", now="2026-03-09T12:00:00.000000Z", caps=caps,
    )  # fmt: skip


async def run(workdir: Path, *, capped: bool, prefill: int) -> float:
    """Reservations per second (TASKS concurrent members)."""
    path = workdir / f"budgets-{capped}-{prefill}.db"
    db = SQLiteDatabase(path)
    await db.connect()
    await db.migrate()
    users, wallets, jobs = UserRepository(db), WalletRepository(db), JobRepository(db)
    payers = []
    for _ in range(TASKS):
        user = await users.create()
        payers.append((user.id, (await wallets.open(user.id, GUILD, starter_coins=10**9)).wallet))
    # A month that already holds `prefill` billed jobs (a busy server).
    for start in range(0, prefill, 500):

        async def fill(tx: Transaction, start: int = start) -> None:
            await tx.executemany(
                "INSERT INTO generation_usage (id, guild_id, user_id, model, status, "
                "estimate_micros, cost_micros, images, day, month, created_at, updated_at) "
                "VALUES (?, ?, 'x', 'gemini-2.5-flash-image', 'BILLED', 38703, 38702, 1, ?, "
                "'2026-03', '2026-03-01T00:00:00.000000Z', '2026-03-01T00:00:00.000000Z')",
                [
                    (f"prefill-{n}", str(GUILD), f"2026-03-{1 + n % 9:02d}")
                    for n in range(start, min(prefill, start + 500))
                ],
            )

        await db.write(fill)
    per_task = RESERVATIONS // TASKS

    async def member(user_id: str, wallet_id: str) -> None:
        for _ in range(per_task):
            await jobs.reserve(
                kind="image", user_id=user_id, wallet_id=wallet_id, cost=1, guild_id=GUILD,
                request={"prompt": "bench"}, claim=claim(capped),
            )  # fmt: skip

    try:
        started = time.perf_counter()
        await asyncio.gather(*(member(user_id, wallet.id) for user_id, wallet in payers))
        elapsed = time.perf_counter() - started
    finally:
        await db.close()
    return per_task * TASKS / elapsed


async def main() -> None:
    print(f"reservations ({RESERVATIONS}, {TASKS} concurrent members), SQLite file, per second:")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for prefill in (0, 20_000):
            plain = await run(workdir, capped=False, prefill=prefill)
            capped = await run(workdir, capped=True, prefill=prefill)
            print(
                f"  month holding {prefill:>6} jobs: no caps {plain:7.0f}/s, "
                f"three caps {capped:7.0f}/s ({capped / plain:.0%})"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
