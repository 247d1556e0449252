"""Copy a SQLite database into an empty PostgreSQL database (`python -m bot copy-to-postgres`).

Both are migrated to the newest version first, so their tables match column for column (the
two migration sets describe the same schema). Every table is copied whole, parents before
children (by the SQLite foreign keys), in one PostgreSQL transaction: the copy lands entirely
or not at all. Identity sequences then continue after the copied rows. At the end the copy is
verified: the same number of rows in every table, the same coins in every wallet, and the
ledger invariant (`coins == SUM(delta)`, newest `balance_after == coins`) on PostgreSQL.

Stop the bot before copying: writes made during the copy would not be in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from storage.db import Transaction
from storage.errors import DatabaseError
from storage.postgres import PostgresDatabase, PostgresTransaction
from storage.sqlite import SQLiteDatabase

BATCH = 5000
#: Never copied: each database keeps its own record of the migrations applied to it.
SKIPPED = frozenset({"schema_migrations"})


@dataclass
class CopyReport:
    """Rows copied per table, in copy order, and what the verification found."""

    tables: dict[str, int] = field(default_factory=dict)
    wallets_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{table}: {rows} row(s)" for table, rows in self.tables.items()]


async def copy_sqlite_to_postgres(
    source: SQLiteDatabase,
    target: PostgresDatabase,
    *,
    progress: Callable[[str], None] | None = None,
) -> CopyReport:
    """Copy every row of `source` into `target` (which must hold no data yet) and verify the
    copy; raises DatabaseError (nothing copied) when it can't be done."""
    await source.migrate()
    await target.migrate()
    source_versions = set(await source.applied_migrations())
    target_versions = set(await target.applied_migrations())
    if source_versions != target_versions:
        raise DatabaseError(
            f"the two databases are at different versions ({sorted(source_versions)} vs "
            f"{sorted(target_versions)}): update the bot on both sides first"
        )
    order = await _copy_order(source)
    target_tables = await _columns(target)
    for table in order:
        if table in target_tables and await target.fetchval(f"SELECT COUNT(*) FROM {table}"):
            raise DatabaseError(
                f"{target.description} already holds data (table {table}): copy into an "
                "empty database only"
            )
    report = CopyReport()

    async def copy(tx: Transaction) -> None:
        assert isinstance(tx, PostgresTransaction)
        conn = tx.connection
        for table in order:
            if table not in target_tables:
                raise DatabaseError(f"table {table} is missing on PostgreSQL")
            source_columns = await _sqlite_columns(source, table)
            columns = [c for c in source_columns if c in target_tables[table]]
            missing = set(source_columns) - set(columns)
            if missing:
                raise DatabaseError(f"{table}: PostgreSQL has no column {sorted(missing)}")
            copied = 0
            last = None
            while True:
                rows = await source.fetchall(
                    f"SELECT rowid AS _rowid, {', '.join(columns)} FROM {table} "
                    f"{'WHERE rowid > ? ' if last is not None else ''}ORDER BY rowid LIMIT ?",
                    (*([last] if last is not None else []), BATCH),
                )
                if not rows:
                    break
                last = rows[-1]["_rowid"]
                await conn.copy_records_to_table(
                    table,
                    records=[tuple(row[c] for c in columns) for row in rows],
                    columns=columns,
                )
                copied += len(rows)
            report.tables[table] = copied
            if progress is not None:
                progress(f"{table}: {copied} row(s)")
        # Identity columns (ledger and audit `seq`) continue after the copied rows.
        identities = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'"
        )
        for identity in identities:
            table, column = identity["table_name"], identity["column_name"]
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
            )

    await target.write(copy)
    await _verify(source, target, report)
    return report


async def _copy_order(source: SQLiteDatabase) -> list[str]:
    """Tables parents first, by their foreign keys."""
    rows = await source.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    tables = [str(r[0]) for r in rows if str(r[0]) not in SKIPPED]
    parents: dict[str, set[str]] = {}
    for table in tables:
        keys = await source.fetchall(f"PRAGMA foreign_key_list({table})")
        parents[table] = {str(k["table"]) for k in keys} - {table}
    order: list[str] = []
    while len(order) < len(tables):
        ready = [t for t in tables if t not in order and parents[t] <= set(order)]
        if not ready:
            raise DatabaseError(f"foreign keys form a cycle among {set(tables) - set(order)}")
        order.extend(ready)
    return order


async def _sqlite_columns(source: SQLiteDatabase, table: str) -> list[str]:
    return [str(r["name"]) for r in await source.fetchall(f"PRAGMA table_info({table})")]


async def _columns(target: PostgresDatabase) -> dict[str, set[str]]:
    rows = await target.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    columns: dict[str, set[str]] = {}
    for row in rows:
        columns.setdefault(str(row[0]), set()).add(str(row[1]))
    return columns


async def _verify(source: SQLiteDatabase, target: PostgresDatabase, report: CopyReport) -> None:
    """Row counts, every wallet's coins, and the ledger invariant on the copy."""
    for table, copied in report.tables.items():
        there = int(await target.fetchval(f"SELECT COUNT(*) FROM {table}"))
        if there != copied:
            report.problems.append(f"{table}: {copied} rows copied, {there} on PostgreSQL")
    wallets = "SELECT id, coins FROM wallets ORDER BY id"
    before = {str(r[0]): int(r[1]) for r in await source.fetchall(wallets)}
    after = {str(r[0]): int(r[1]) for r in await target.fetchall(wallets)}
    if before != after:
        report.problems.append("wallet balances differ after the copy")
    report.wallets_checked = len(after)
    broken = await target.fetchval(
        "SELECT COUNT(*) FROM wallets w WHERE w.coins <> COALESCE((SELECT SUM(t.delta) FROM "
        "coin_transactions t WHERE t.wallet_id = w.id), 0) OR w.coins <> COALESCE((SELECT "
        "t.balance_after FROM coin_transactions t WHERE t.wallet_id = w.id ORDER BY t.seq "
        "DESC LIMIT 1), w.coins)"
    )
    if broken:
        report.problems.append(f"{broken} wallet(s) whose ledger does not add up")
    if report.problems:
        raise DatabaseError("the copy does not match: " + "; ".join(report.problems))
