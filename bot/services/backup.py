"""Backups of a running bot (`python -m bot backup DEST`, and on a schedule), verified by
`restore` (bot/services/restore.py) before anything is restored.

A backup is a folder:

    manifest.json            what is in it: files, sizes, sha256, versions, migration level
    database/bot.sqlite3     SQLite: a copy made with SQLite's online backup API
    database/bot.pgdump      PostgreSQL: `pg_dump --format=custom`
    objects/<key>            every object a row of the copied database points to

Consistency while the bot runs. The database copy is one snapshot: SQLite's backup API copies
in one step under a read transaction (WAL: writers go on), and PostgreSQL's `pg_dump` reads the
snapshot that this module exports (`pg_export_snapshot`) and keeps open, so the object keys are
read from exactly what was dumped. Objects are immutable (every key is new), so they are
copied in two passes around the snapshot: everything present before it, then what the
snapshot names that appeared meanwhile. What the snapshot names but neither pass found is an
image a member deleted while the backup ran (its row is gone from the live database by then):
the manifest lists it, and `restore` deletes that row as the member did. An object that is
missing from the live deployment too is listed as such (the bot's own reconciliation reports
those).

Objects are copied through the ObjectStore API, whatever the backend (a local folder, R2, any
S3): a backup is one self-contained folder that `restore` can verify byte for byte and put into
either backend, with no other tool and no second bucket to trust. The cost is the bucket's size
in disk and transfer; docs/operations.md says how to copy a very large bucket with rclone
instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from bot.services.maintenance import OWNED_PREFIXES
from bot.services.metrics import version
from storage.db import Database
from storage.images import history_keys
from storage.library import LIBRARY_PREFIXES, LIBRARY_SQL, library_keys, library_keys_of_rows
from storage.objects import ObjectNotFound, ObjectStore, validate_key
from storage.timeutil import utcnow

log = logging.getLogger(__name__)

FORMAT = "nanobanana-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database/bot.sqlite3"
PGDUMP_FILE = "database/bot.pgdump"
OBJECTS_DIR = "objects"
# Objects copied at once (each a get and a file write).
COPY_CONCURRENCY = 8
_CHUNK = 1 << 20

# The object keys of each image row (the same columns ImageRepository.referenced_keys reads).
_KEYS_SQL = "SELECT id, storage_key, thumbnail_key, metadata FROM images"


class BackupError(Exception):
    """The backup could not be made; `str()` is one line saying why (nothing is left)."""


@dataclass(frozen=True)
class DatabaseSource:
    """The deployment's database: the open `database` (for reads), and where its bytes are
    (`sqlite_path`, or `postgres_url`)."""

    database: Database
    sqlite_path: Path | None = None
    postgres_url: str | None = None

    @property
    def backend(self) -> str:
        return "postgresql" if self.postgres_url else "sqlite"


@dataclass
class BackupReport:
    """What a backup holds (and its manifest, as written)."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def objects(self) -> int:
        return int(self.manifest["objects"]["count"])

    @property
    def bytes(self) -> int:
        files = [self.manifest["database"], *self.manifest["objects"]["files"]]
        return sum(int(f["size"]) for f in files)

    def summary(self) -> str:
        deleted = self.manifest["deleted_during_backup"]
        missing = self.manifest["missing_objects"]
        line = (
            f"backup {self.path}: database ({self.manifest['database']['backend']}, migration "
            f"{self.manifest['database']['migration']:04d}) and {self.objects} object(s), "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f}s"
        )
        if deleted:
            line += f"; {len(deleted)} image(s) deleted by members while it ran (left out)"
        if missing:
            line += f"; {len(missing)} object(s) already missing from the deployment"
        return line


def sha256_file(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def object_path(root: Path, key: str) -> Path:
    """Where an object's bytes go in a backup (keys are checked: no `..`, no absolute path)."""
    validate_key(key)
    path = (root / OBJECTS_DIR / key).resolve()
    if not path.is_relative_to((root / OBJECTS_DIR).resolve()):
        raise BackupError(f"unsafe object key {key!r}")
    return path


def keys_of_rows(rows: Iterable[Any]) -> dict[str, set[str]]:
    """Image id -> the object keys its row points to (image, thumbnail, inputs, history)."""
    keys: dict[str, set[str]] = {}
    for row in rows:
        found = {k for k in (row[1], row[2]) if k}
        raw = row[3]
        metadata = json.loads(raw) if isinstance(raw, str) else (raw or {})
        if isinstance(metadata, dict):
            found.update(str(k) for k in metadata.get("input_keys") or [])
            found.update(history_keys(metadata.get("history")))
        keys[str(row[0])] = found
    return keys


@dataclass
class _Snapshot:
    file: str
    migrations: list[tuple[int, str]]
    keys: dict[str, set[str]]
    tool: dict[str, str]


def _sqlite_snapshot(source: Path, target: Path) -> _Snapshot:
    """SQLite's online backup API, in one step (one read transaction: a consistent copy while
    the bot writes); then the copy's migrations and object keys."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source} (DATABASE_PATH)")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            # One self-contained file (the copy would otherwise be in WAL mode, like its
            # source, and open with -wal/-shm files beside it).
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as error:
        raise BackupError(f"SQLite backup of {source} failed: {error}") from error
    finally:
        src.close()
    copy = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        migrations = [
            (int(v), str(n))
            for v, n in copy.execute("SELECT version, name FROM schema_migrations ORDER BY 1")
        ]
        keys = keys_of_rows(copy.execute(_KEYS_SQL))
        for sql in LIBRARY_SQL:
            keys.update(library_keys_of_rows(copy.execute(sql)))
    except sqlite3.Error as error:
        raise BackupError(f"the copy of {source} can't be read: {error}") from error
    finally:
        copy.close()
    return _Snapshot(SQLITE_FILE, migrations, keys, {"sqlite": sqlite3.sqlite_version})


def find_pg_tool(name: str) -> Path | None:
    """`pg_dump` / `pg_restore`: on PATH, else the newest of Debian's
    /usr/lib/postgresql/<version>/bin (where the server packages put them)."""
    found = shutil.which(name)
    if found:
        return Path(found)
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    return next((f / name for f in folders if (f / name).exists()), None)


def libpq_command(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password (visible to `ps`), and the environment that carries it."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
        netloc = parts.hostname or ""
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url, env


async def run_tool(args: list[str], env: dict[str, str]) -> str:
    """Run a PostgreSQL client tool; its first error line on failure (as BackupError)."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        raise BackupError(f"{Path(args[0]).name} failed: {lines[0] if lines else 'no output'}")
    return out.decode(errors="replace").strip()


async def _postgres_snapshot(url: str, target: Path) -> _Snapshot:
    """`pg_dump` of a snapshot this function exports and holds open, and that snapshot's
    migrations and object keys: both read the same instant of the database."""
    pg_dump = find_pg_tool("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump not found: install PostgreSQL's client tools (Debian: apt-get install "
            "postgresql-client-15, the server's version or newer), or see docs/operations.md"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    bare, env = libpq_command(url)
    try:
        conn = await asyncpg.connect(url)
    except Exception as error:
        raise BackupError(f"cannot reach PostgreSQL ({type(error).__name__}: {error})") from None
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            await run_tool(
                [str(pg_dump), "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snapshot}", f"--file={target}", f"--dbname={bare}"],
                env,
            )  # fmt: skip
            migrations = [
                (int(r[0]), str(r[1]))
                for r in await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
            ]
            keys = keys_of_rows(await conn.fetch(_KEYS_SQL))
            for sql in LIBRARY_SQL:
                keys.update(library_keys_of_rows(await conn.fetch(sql)))
            server = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    tool = await run_tool([str(pg_dump), "--version"], env)
    return _Snapshot(PGDUMP_FILE, migrations, keys, {"pg_dump": tool, "server": server})


class _Copier:
    """Objects from the store into the backup folder, with their size and sha256."""

    def __init__(self, store: ObjectStore, root: Path) -> None:
        self.store = store
        self.root = root
        self.copied: dict[str, tuple[int, str]] = {}
        self._limit = asyncio.Semaphore(COPY_CONCURRENCY)

    async def copy(self, keys: Iterable[str]) -> set[str]:
        """Copy these keys; returns those the store no longer has."""
        gone: set[str] = set()

        async def one(key: str) -> None:
            async with self._limit:
                try:
                    data = await self.store.get(key)
                except ObjectNotFound:
                    gone.add(key)
                    return
                self.copied[key] = await asyncio.to_thread(self._write, key, data)

        await asyncio.gather(*(one(k) for k in keys if k not in self.copied))
        return gone

    def _write(self, key: str, data: bytes) -> tuple[int, str]:
        path = object_path(self.root, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return len(data), hashlib.sha256(data).hexdigest()

    def drop(self, keys: Iterable[str]) -> None:
        """Leave out objects copied in the first pass that the snapshot doesn't name."""
        for key in keys:
            if self.copied.pop(key, None) is not None:
                object_path(self.root, key).unlink(missing_ok=True)


async def owned_keys(store: ObjectStore) -> list[str]:
    """Every object the bot owns in the store (its prefixes only: a shared bucket's other
    objects are not ours), the character library's and style presets' included."""
    prefixes = (*OWNED_PREFIXES, *LIBRARY_PREFIXES)
    return [key for prefix in prefixes for key in await store.list(prefix)]


def _prepare(dest: Path) -> tuple[Path, Path]:
    """`dest` (absolute; refused unless new or empty) and the temporary folder beside it
    where the backup is written."""
    dest = dest.resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} already exists and is not empty: name a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest, Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))


def _publish(work: Path, manifest: dict[str, Any], dest: Path) -> None:
    """Write the manifest, flush every file to disk, and give the backup its name: `dest`
    exists only complete."""
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    for path in sorted(work.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    if dest.exists():
        dest.rmdir()  # empty, checked before
    work.rename(dest)


async def take_backup(
    source: DatabaseSource,
    store: ObjectStore,
    dest: Path,
    *,
    storage: str = "local",
    progress: Callable[[str], None] | None = None,
) -> BackupReport:
    """Back up the running deployment into `dest` (a new or empty folder). It is written
    under a temporary name beside `dest` and renamed at the end, so `dest` exists only
    complete. Raises BackupError (nothing left behind)."""
    started = time.monotonic()
    say = progress or (lambda line: None)
    dest, work = await asyncio.to_thread(_prepare, dest)
    try:
        copier = _Copier(store, work)
        say("copying objects (first pass)")
        await copier.copy(await owned_keys(store))
        say(f"snapshot of the {source.backend} database")
        if source.postgres_url:
            snapshot = await _postgres_snapshot(source.postgres_url, work / PGDUMP_FILE)
        else:
            assert source.sqlite_path is not None
            snapshot = await asyncio.to_thread(
                _sqlite_snapshot, source.sqlite_path, work / SQLITE_FILE
            )
        wanted = set().union(*snapshot.keys.values()) if snapshot.keys else set()
        say("copying objects created meanwhile (second pass)")
        absent = await copier.copy(sorted(wanted - set(copier.copied)))
        copier.drop(set(copier.copied) - wanted)
        deleted, missing = await _explain_absent(source.database, snapshot.keys, absent)
        size, digest = await asyncio.to_thread(sha256_file, work / snapshot.file)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": utcnow().isoformat(),
            "bot_version": version(),
            "source": {
                "database": source.backend,
                "description": source.database.description,
                "storage": storage,
            },
            "database": {
                "backend": source.backend,
                "file": snapshot.file,
                "size": size,
                "sha256": digest,
                "migration": max((v for v, _ in snapshot.migrations), default=0),
                "migrations": [f"{v:04d}_{n}" for v, n in snapshot.migrations],
                "images": sum(":" not in row for row in snapshot.keys),
                # Characters and style presets whose images are copied too.
                "library": sum(":" in row for row in snapshot.keys),
                "tools": snapshot.tool,
            },
            "objects": {
                "count": len(copier.copied),
                "bytes": sum(s for s, _ in copier.copied.values()),
                "files": [
                    {"key": key, "size": s, "sha256": d}
                    for key, (s, d) in sorted(copier.copied.items())
                ],
            },
            "deleted_during_backup": sorted(deleted),
            "missing_objects": sorted(missing),
        }
        await asyncio.to_thread(_publish, work, manifest, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report = BackupReport(dest, manifest, time.monotonic() - started)
    log.info("%s", report.summary())
    return report


async def _explain_absent(
    database: Database, keys: dict[str, set[str]], absent: set[str]
) -> tuple[set[str], set[str]]:
    """Rows of the snapshot whose objects are gone because the row was deleted since (images
    by id; library rows as "character:<id>" / "style:<id>"), and keys missing from a row that
    still exists."""
    if not absent:
        return set(), set()
    images = sorted(image for image, found in keys.items() if found & absent)
    living: set[str] = set()
    plain = [i for i in images if ":" not in i]
    for start in range(0, len(plain), 500):
        batch = plain[start : start + 500]
        rows = await database.fetchall(
            f"SELECT id FROM images WHERE id IN ({', '.join('?' * len(batch))})", batch
        )
        living.update(str(row[0]) for row in rows)
    library = await library_keys(database)
    living.update(i for i in images if ":" in i and i in library)
    deleted = set(images) - living
    still = set().union(*(keys[i] for i in living))
    return deleted, absent & still


# Scheduled backups ---------------------------------------------------------------------

BACKUP_LOCK = "scheduled-backup"
LAST_BACKUP_KEY = "last_backup_at"
NAME_PREFIX = "nanobanana-"


def backup_name(moment: datetime) -> str:
    return f"{NAME_PREFIX}{moment.strftime('%Y%m%dT%H%M%SZ')}"


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest complete backups in `folder` (named by
    `backup_name`, with a manifest); returns those removed. Anything else is left alone."""
    complete = sorted(
        p for p in folder.glob(f"{NAME_PREFIX}*") if p.is_dir() and (p / MANIFEST).is_file()
    )
    removed = complete[: max(0, len(complete) - keep)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


class BackupSchedule:
    """Every `every_hours`, one process of the deployment (the one that takes the named lock)
    backs it up into `folder` and keeps the `keep` newest. When the last backup was made is
    kept in the database, so processes that restart or start later don't back up again
    before it is due."""

    def __init__(
        self,
        make: Callable[[Path], Awaitable[BackupReport]],
        *,
        database: Database,
        holding: Callable[[str], contextlib.AbstractAsyncContextManager[bool]],
        folder: Path,
        every_hours: float,
        keep: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.make = make
        self.database = database
        self.holding = holding
        self.folder = folder
        self.interval = every_hours * 3600
        self.keep = keep
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def due(self) -> bool:
        last = await self.database.get_state(LAST_BACKUP_KEY)
        if last is None:
            return True
        elapsed = (self.clock() - datetime.fromisoformat(last)).total_seconds()
        return elapsed >= self.interval

    async def run_once(self) -> BackupReport | None:
        """A backup if one is due and no other process is making it; None otherwise."""
        if not await self.due():
            return None
        async with self.holding(BACKUP_LOCK) as mine:
            if not mine or not await self.due():
                return None
            now = self.clock()
            report = await self.make(self.folder / backup_name(now))
            await self.database.set_state(LAST_BACKUP_KEY, now.isoformat())
        for path in prune(self.folder, self.keep):
            log.info("scheduled backups: removed %s (BACKUP_KEEP=%d)", path, self.keep)
        return report

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="scheduled-backups")

    async def _loop(self) -> None:
        # Look often enough to be on time, rarely enough to cost nothing.
        pause = max(1.0, min(self.interval / 4, 300.0))
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("scheduled backup failed: %s (next try in %.0fs)", error, pause)
            await asyncio.sleep(pause)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
