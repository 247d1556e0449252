"""`python -m bot restore SRC`: a backup (bot/services/backup.py) back into an empty deployment.

Nothing is touched until the backup has been verified whole (every file's size and sha256
against its manifest, its format, a migration level this code knows) and the deployment found
empty (no member, image or ledger row in the database, no object in the bucket or folder):
a damaged backup or a deployment in use is refused with one line saying which file or what
is in the way.

What goes where:
- a SQLite copy into SQLite (the file at DATABASE_PATH), or into PostgreSQL (copied row by row
  as `copy-to-postgres` does, and verified);
- a `pg_dump` into PostgreSQL (`pg_restore`); not into SQLite (said so);
- the objects into the configured store (local folder, R2 or any S3), through its API.
Then the database is migrated to this version, and the images members deleted while the backup
ran are deleted as they were. Jobs that were running when the backup was taken are refunded
by the bot's usual recovery at its first start (their process is gone).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bot.services.backup import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    OBJECTS_DIR,
    BackupError,
    find_pg_tool,
    libpq_command,
    object_path,
    owned_keys,
    run_tool,
    sha256_file,
)
from storage.copy import copy_sqlite_to_postgres
from storage.db import (
    DEFAULT_MIGRATIONS_DIR,
    POSTGRES_MIGRATIONS_DIR,
    load_migrations,
)
from storage.images import ImageRepository
from storage.objects import ObjectStore
from storage.open import open_database
from storage.postgres import PostgresDatabase
from storage.sqlite import SQLiteDatabase

# Tables whose rows make a deployment "in use": restore never writes over them.
DATA_TABLES = ("users", "wallets", "images", "coin_transactions")
PUT_CONCURRENCY = 8


class RestoreError(Exception):
    """The restore was refused or failed; `str()` is one line saying why."""


@dataclass(frozen=True)
class Target:
    """The deployment to restore into: its database (`sqlite_path`, or `postgres_url`) and
    its object store (open)."""

    store: ObjectStore
    sqlite_path: Path | None = None
    postgres_url: str | None = None


@dataclass
class RestoreReport:
    manifest: dict[str, Any]
    objects: int
    deleted: int
    seconds: float

    def summary(self) -> str:
        database = self.manifest["database"]
        line = (
            f"restored the {database['backend']} database of "
            f"{self.manifest['created_at'][:19]}Z (migration {database['migration']:04d}) and "
            f"{self.objects} object(s) in {self.seconds:.1f}s"
        )
        if self.deleted:
            line += f"; {self.deleted} image(s) deleted during the backup deleted again"
        return line


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, checked for shape; RestoreError when it isn't one."""
    path = source / MANIFEST
    if not path.is_file():
        raise RestoreError(f"{source} is not a backup: it has no {MANIFEST}")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
        database, objects = manifest["database"], manifest["objects"]
        assert manifest["format"] == FORMAT, "not a nanobanana-bot backup"
        for entry in [database, *objects["files"]]:
            assert isinstance(entry["size"], int) and isinstance(entry["sha256"], str)
        assert isinstance(database["migration"], int) and isinstance(database["file"], str)
        assert isinstance(manifest["deleted_during_backup"], list)
    except (ValueError, KeyError, TypeError, AssertionError) as error:
        detail = f": {error}" if isinstance(error, AssertionError) and str(error) else ""
        raise RestoreError(
            f"backup {source} is damaged: {MANIFEST} can't be read{detail}; nothing restored"
        ) from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RestoreError(
            f"backup {source} is in format {manifest.get('format_version')!r}; this version "
            f"reads format {FORMAT_VERSION}: restore it with the version that made it"
        )
    return manifest


def verify(source: Path) -> dict[str, Any]:
    """Every file of the backup against its manifest (size, sha256); the manifest, or
    RestoreError naming the first file that differs."""
    manifest = read_manifest(source)
    root = source.resolve()
    entries = [(root / manifest["database"]["file"], manifest["database"])]
    try:
        entries += [(object_path(root, f["key"]), f) for f in manifest["objects"]["files"]]
    except Exception as error:
        raise RestoreError(f"backup {source} is damaged: {error}; nothing restored") from None
    for path, entry in entries:
        if not path.resolve().is_relative_to(root):
            raise RestoreError(f"backup {source} is damaged: {path} is outside it")
        name = path.relative_to(root)
        if not path.is_file():
            raise RestoreError(f"backup {source} is damaged: {name} is missing; nothing restored")
        size, digest = sha256_file(path)
        if size != entry["size"] or digest != entry["sha256"]:
            raise RestoreError(
                f"backup {source} is damaged: {name} is not what was backed up ({size} bytes, "
                f"sha256 {digest[:12]}..., expected {entry['size']} bytes, "
                f"{entry['sha256'][:12]}...); nothing restored"
            )
    return manifest


def _check_version(manifest: dict[str, Any], target_postgres: bool) -> None:
    backend = manifest["database"]["backend"]
    if backend == "postgresql" and not target_postgres:
        raise RestoreError(
            "this backup is of a PostgreSQL database: restore it into PostgreSQL (set "
            "DATABASE_URL to an empty database)"
        )
    folder = POSTGRES_MIGRATIONS_DIR if backend == "postgresql" else DEFAULT_MIGRATIONS_DIR
    known = {f"{m.version:04d}_{m.name}" for m in load_migrations(folder)}
    unknown = [name for name in manifest["database"]["migrations"] if name not in known]
    if unknown:
        raise RestoreError(
            f"this backup was made by a newer or different version of the bot (migration "
            f"{unknown[0]} is unknown here, backup version {manifest.get('bot_version')}): "
            "update the bot first"
        )


def _sqlite_rows(path: Path) -> int:
    """Rows in the data tables of a SQLite file (0 when it has none of them)."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return sum(
            int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
            for t in DATA_TABLES
            if t in tables
        )
    finally:
        conn.close()


async def _postgres_rows(url: str) -> tuple[int, list[str]]:
    """Rows in the data tables of a PostgreSQL database, and every table it has."""
    conn = await asyncpg.connect(url)
    try:
        tables = [
            str(r[0])
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        ]
        rows = 0
        for table in DATA_TABLES:
            if table in tables:
                rows += int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))
        return rows, tables
    finally:
        await conn.close()


async def _check_empty(target: Target) -> list[str]:
    """Refuse a deployment in use; the PostgreSQL tables to drop (an empty schema, e.g. a
    database the bot once started on, is replaced whole)."""
    tables: list[str] = []
    if target.postgres_url:
        try:
            rows, tables = await _postgres_rows(target.postgres_url)
        except (OSError, asyncpg.PostgresError) as error:
            raise RestoreError(f"cannot reach PostgreSQL ({error})") from None
        where = "the PostgreSQL database (DATABASE_URL)"
    else:
        assert target.sqlite_path is not None
        rows = await asyncio.to_thread(_sqlite_rows, target.sqlite_path)
        where = f"the SQLite database {target.sqlite_path}"
    if rows:
        raise RestoreError(
            f"the deployment is not empty: {where} has {rows} member, wallet, image or ledger "
            "row(s). Restore only into an empty deployment (a new DATABASE_PATH or database, "
            "an empty folder or bucket); nothing restored"
        )
    objects = await owned_keys(target.store)
    if objects:
        raise RestoreError(
            f"the deployment is not empty: its object store already holds {len(objects)} "
            f"object(s) (e.g. {objects[0]}). Restore only into an empty folder or bucket; "
            "nothing restored"
        )
    return tables


async def restore_backup(
    source: Path, target: Target, *, progress: Callable[[str], None] | None = None
) -> RestoreReport:
    """Verify `source`, check that `target` is empty, restore (see the module doc). Raises
    RestoreError with one line when refused."""
    started = time.monotonic()
    say = progress or (lambda line: None)
    manifest = await asyncio.to_thread(verify, source)
    _check_version(manifest, target.postgres_url is not None)
    say(f"backup verified: {manifest['objects']['count']} object(s), database sha256 matches")
    tables = await _check_empty(target)
    database_file = source / manifest["database"]["file"]
    try:
        if target.postgres_url:
            await _restore_postgres(manifest, database_file, target.postgres_url, tables, say)
        else:
            assert target.sqlite_path is not None
            await asyncio.to_thread(_restore_sqlite_file, database_file, target.sqlite_path)
        say("database restored; restoring objects")
        count = await _put_objects(source, manifest, target.store)
        deleted = await _finish(manifest, target)
    except BackupError as error:
        raise RestoreError(f"restore failed: {error}") from None
    return RestoreReport(manifest, count, deleted, time.monotonic() - started)


def _restore_sqlite_file(backup: Path, path: Path) -> None:
    """The SQLite copy at DATABASE_PATH (replacing an empty file, written under a temporary
    name and renamed, so the path never holds half a database)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    temp = path.with_name(f".{path.name}.restoring")
    shutil.copyfile(backup, temp)
    temp.replace(path)


async def _restore_postgres(
    manifest: dict[str, Any], file: Path, url: str, tables: list[str],
    say: Callable[[str], None],
) -> None:  # fmt: skip
    if tables:
        # Empty of data (checked): the bot's schema from an earlier start, replaced whole.
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                for table in tables:
                    await conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        finally:
            await conn.close()
    if manifest["database"]["backend"] == "sqlite":
        say("copying the SQLite backup into PostgreSQL")
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "bot.sqlite3"
            shutil.copyfile(file, copy)
            async with SQLiteDatabase(copy) as source, PostgresDatabase(url) as target_db:
                report = await copy_sqlite_to_postgres(source, target_db)
            if report.problems:
                raise RestoreError(f"restore failed: {report.problems[0]}")
        return
    pg_restore = find_pg_tool("pg_restore")
    if pg_restore is None:
        raise RestoreError(
            "pg_restore not found: install PostgreSQL's client tools (Debian: apt-get "
            "install postgresql-client-15) and run restore again"
        )
    bare, env = libpq_command(url)
    await run_tool(
        [str(pg_restore), "--no-owner", "--no-privileges", "--exit-on-error",
         "--single-transaction", f"--dbname={bare}", str(file)],
        env,
    )  # fmt: skip


async def _put_objects(source: Path, manifest: dict[str, Any], store: ObjectStore) -> int:
    limit = asyncio.Semaphore(PUT_CONCURRENCY)
    root = await asyncio.to_thread(source.resolve)

    async def one(key: str) -> None:
        async with limit:
            data = await asyncio.to_thread(object_path(root, key).read_bytes)
            kind = mimetypes.guess_type(key)[0] or "application/octet-stream"
            await store.put(key, data, kind)

    files = manifest["objects"]["files"]
    await asyncio.gather(*(one(f["key"]) for f in files))
    return len(files)


# Library rows as a backup names them ("character:<id>", "style:<id>"): their tables.
_LIBRARY_TABLES = {"character": "characters", "style": "style_presets"}


async def _finish(manifest: dict[str, Any], target: Target) -> int:
    """Migrate to this version; delete again the images deleted while the backup ran."""
    database = open_database(url=target.postgres_url, path=target.sqlite_path or Path())
    async with database:
        await database.migrate()
        images = ImageRepository(database)
        deleted = 0
        for row_id in manifest["deleted_during_backup"]:
            kind, _, library_id = str(row_id).partition(":")
            if library_id and kind in _LIBRARY_TABLES:
                # A character or style deleted while the backup ran: deleted again.
                deleted += (
                    await database.execute(
                        f"DELETE FROM {_LIBRARY_TABLES[kind]} WHERE id = ?", (library_id,)
                    )
                    or 0
                )
            else:
                deleted += await images.delete(str(row_id)) is not None
    return deleted


__all__ = ["OBJECTS_DIR", "RestoreError", "RestoreReport", "Target", "restore_backup", "verify"]
