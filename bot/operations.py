"""The `backup`, `restore` and `fsck` commands: the configured deployment, the services of
bot/services/backup.py, restore.py and fsck.py, and lines for the owner."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from bot.app import build_database, build_object_store
from bot.config import Settings
from bot.services.backup import BackupError, DatabaseSource, take_backup
from bot.services.fsck import DEFAULT_GRACE, run_fsck
from bot.services.restore import RestoreError, Target, restore_backup
from storage.errors import DatabaseError
from storage.objects import StorageError


async def backup(settings: Settings, dest: Path) -> int:
    """Back up the deployment (running or not) into the new folder `dest`; the exit code."""
    url = settings.postgres_url
    if url is None and not settings.database_path.is_file():
        print(f"backup failed: no SQLite database at {settings.database_path} (DATABASE_PATH)",
              file=sys.stderr)  # fmt: skip
        return 1
    database = build_database(settings)
    store = build_object_store(settings)
    try:
        async with database:
            await _open(store)
            try:
                source = DatabaseSource(database, None if url else settings.database_path, url)
                report = await take_backup(
                    source, store, dest, storage=settings.storage_backend.value, progress=print
                )
            finally:
                await store.close()
    except (BackupError, DatabaseError, StorageError, OSError) as error:
        print(f"backup failed, nothing written: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


async def restore(settings: Settings, source: Path) -> int:
    """Restore the backup at `source` into the configured, empty deployment; the exit code."""
    url = settings.postgres_url
    store = build_object_store(settings)
    try:
        await _open(store)
        try:
            target = Target(store, None if url else settings.database_path, url)
            report = await restore_backup(source, target, progress=print)
        finally:
            await store.close()
    except RestoreError as error:
        print(f"restore: {error}", file=sys.stderr)
        return 1
    except (DatabaseError, StorageError, OSError) as error:
        print(f"restore failed: {error}. Empty the database and the store, then run restore "
              "again", file=sys.stderr)  # fmt: skip
        return 1
    print(f"{report.summary()}. Start the bot.")
    return 0


async def fsck(
    settings: Settings, *, repair: bool = False, grace: timedelta = DEFAULT_GRACE
) -> int:
    """Check the deployment (running or not): rows against objects, ledgers, unfinished
    jobs; with `repair`, fix what is safe. One line per finding; the exit code (0: nothing
    wrong is left, 1: something is, 2: it could not run)."""
    url = settings.postgres_url
    if url is None and not settings.database_path.is_file():
        print(f"fsck: no SQLite database at {settings.database_path} (DATABASE_PATH)",
              file=sys.stderr)  # fmt: skip
        return 2
    database = build_database(settings)
    store = build_object_store(settings)
    try:
        async with database:
            await _open(store)
            try:
                print(f"fsck of {database.description} and {settings.storage_backend.value} "
                      f"storage{' (repairing)' if repair else ''}")  # fmt: skip
                report = await run_fsck(database, store, repair=repair, grace=grace)
            finally:
                await store.close()
    except (DatabaseError, StorageError, OSError) as error:
        print(f"fsck failed: {error}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return report.exit_code


async def _open(store: object) -> None:
    opener = getattr(store, "open", None)
    if opener is not None:
        await opener()
