"""`python -m bot [run|migrate|check|health|copy-to-postgres|backup DEST|restore SRC|fsck]`:
start the bot, apply migrations, check the setup, probe a running bot's health, copy a SQLite
database into PostgreSQL, back up the deployment (while it runs), restore a backup into an
empty one, or check that the database, the stored images and the ledger agree (`fsck
--repair` fixes what is safe to fix)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.config import Settings, SettingsError, load_settings
from bot.logs import secrets_of, setup_logging
from bot.runtime import tune_memory


def main(argv: list[str] | None = None) -> int:
    """Parse the command, load settings (one clear line on error), run it; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=(
            "run",
            "migrate",
            "check",
            "health",
            "copy-to-postgres",
            "backup",
            "restore",
            "fsck",
        ),
        help="run the bot (default), apply database migrations, check the configuration, "
        "probe the health of the bot running on this host, copy the SQLite database at "
        "DATABASE_PATH into the PostgreSQL database at DATABASE_URL, back up the database and "
        "images into a new folder (the bot may be running), or restore such a backup into an "
        "empty deployment, or check that rows, stored images and the ledger agree (fsck)",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="backup: the new folder to write; restore: the backup folder to restore",
    )
    parser.add_argument(
        "--sqlite",
        type=Path,
        default=None,
        help="copy-to-postgres: the SQLite file to copy (default: DATABASE_PATH)",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="fsck: fix what is safe to fix (old orphaned objects, thumbnails, stranded jobs, "
        "ledgers that don't add up) and say what was done",
    )
    parser.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="fsck: orphaned objects younger than this are left alone (default 24)",
    )
    args = parser.parse_args(argv)
    # First, before any thread starts: the process keeps its own memory in check.
    tune_memory()
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, secrets=secrets_of(settings), log_format=settings.log_format)
    if args.command in ("run", "check"):
        # The models the settings name, checked against the lineup (and the owner's profiles
        # file): one clear line, before anything starts.
        from bot.services.models import load_models

        try:
            load_models(settings)
        except SettingsError as error:
            print(f"configuration error: {error}", file=sys.stderr)
            return 2
    if args.command != "run":
        # These commands print their own lines; discord.py's chatter (voice support missing,
        # intents off, "logging in") would land between them. Its errors still show.
        logging.getLogger("discord").setLevel(logging.ERROR)
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "check":
        from bot.check import run_checks

        return asyncio.run(run_checks(settings))
    if args.command == "health":
        from bot.check import probe_health

        return asyncio.run(probe_health(settings))
    if args.command == "copy-to-postgres":
        source = args.sqlite or settings.database_path
        if not source.is_file():
            print(f"no SQLite database at {source} (set DATABASE_PATH or --sqlite)",
                  file=sys.stderr)  # fmt: skip
            return 2
        return asyncio.run(_copy(settings, source))
    if args.command in ("backup", "restore"):
        if args.path is None:
            print(f"{args.command} needs a folder: python -m bot {args.command} "
                  f"{'DEST' if args.command == 'backup' else 'SRC'}", file=sys.stderr)  # fmt: skip
            return 2
        from bot.operations import backup, restore

        command = backup if args.command == "backup" else restore
        return asyncio.run(command(settings, args.path))
    if args.command == "fsck":
        from datetime import timedelta

        from bot.operations import fsck

        if args.grace_hours < 0:
            print("--grace-hours can't be negative", file=sys.stderr)
            return 2
        return asyncio.run(fsck(settings, repair=args.repair,
                                grace=timedelta(hours=args.grace_hours)))  # fmt: skip
    return _run(settings)


async def _migrate(settings: Settings) -> int:
    from bot.app import build_database
    from storage.errors import DatabaseError

    db = build_database(settings)
    try:
        async with db:
            applied = await db.migrate()
    except DatabaseError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return 1
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"database {db.description}: applied {names}")
    return 0


async def _copy(settings: Settings, sqlite_path: Path) -> int:
    from storage.copy import copy_sqlite_to_postgres
    from storage.errors import DatabaseError
    from storage.postgres import PostgresDatabase
    from storage.sqlite import SQLiteDatabase

    url = settings.postgres_url
    if not url:
        print("copy-to-postgres needs DATABASE_URL (the PostgreSQL database to copy into)",
              file=sys.stderr)  # fmt: skip
        return 2
    target = PostgresDatabase(url)
    print(f"copying {sqlite_path} into {target.description}")
    try:
        async with SQLiteDatabase(sqlite_path) as source, target:
            report = await copy_sqlite_to_postgres(source, target, progress=print)
    except DatabaseError as error:
        print(f"copy failed, nothing copied: {error}", file=sys.stderr)
        return 1
    print(
        f"done: {sum(report.tables.values())} rows in {len(report.tables)} tables; "
        f"{report.wallets_checked} wallet balances and their ledgers verified. Now set "
        "DATABASE_URL for every bot process and start them."
    )
    return 0


def _run(settings: Settings) -> int:
    from bot.app import run_bot

    return run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
