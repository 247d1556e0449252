"""Members' data rights: `/privacy export` (an archive of everything stored about them) and
`/privacy erase` (everything deleted but the anonymous ledger), and the image retention sweep.

The archive (a zip) holds, for each server (and the DMs), the member's images as files with
their prompts, titles and details (`images.json`), their jobs, each wallet's ledger rows, their
profile row, API tokens (names and dates, never the token) and web sessions. It is built in a
temporary file, delivered by the adapter (a private attachment, or a signed link served by the
web server: `link_token` / `open_link`), and deleted after.

Erasing is storage/privacy.py's one transaction, then the objects are deleted (a failed delete
leaves an orphan that the storage sweep and `fsck --repair` remove) and the adapter removes the
Discord messages that showed the images. A member with a job in progress is refused with a
clear message rather than having it cancelled: their coins are already safe (a job that fails
is refunded), the job ends within minutes, and erasing then leaves nothing in flight that could
write a row or an object for an identity that no longer exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.services.accounts import AccountService
from bot.services.errors import UserFacingError
from bot.services.permissions import Identity
from storage import privacy
from storage.db import Database
from storage.images import ImageRepository
from storage.library import keys_in
from storage.objects import ObjectStore, StorageError
from storage.privacy import Erasure, JobsInProgress, MemberData
from storage.timeutil import to_iso, utcnow

log = logging.getLogger(__name__)

#: Images deleted per retention sweep batch.
SWEEP_BATCH = 200
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}
_README = """Your data in the Nano Banana bot, as of {when} (UTC).

profile.json          your account row (Discord id, name, language, dates)
servers/<id>/         one folder per server (dm: images of no server)
  images.json         each image: prompt or title, description, model, size, cost, dates
  images/<id>.<ext>   the images themselves
ledger/<wallet>.json  each wallet (one per server, or one "global") and all its coin movements
jobs.json             every paid job you ordered (what was asked, what it made or why it failed)
api_tokens.json       your API tokens (names and dates; the tokens themselves are never stored)
web_sessions.json     your signed-in web gallery sessions
{missing}"""


class NothingStored(UserFacingError):
    key = "privacy.nothing"


class JobsRunning(UserFacingError):
    key = "privacy.jobs_in_progress"


@dataclass
class Archive:
    """A built archive (a temporary file: `discard` it once delivered)."""

    path: Path
    size: int
    images: int
    servers: list[str]
    missing: int = 0
    with_files: bool = True

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


@dataclass(frozen=True)
class Erased:
    """What `/privacy erase` did (see storage.privacy.Erasure), for the adapter."""

    erasure: Erasure
    objects_deleted: int
    images: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", len(self.erasure.image_ids))


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=1, default=str, ensure_ascii=False).encode()


def _server_of(guild_id: Any) -> str:
    return "dm" if guild_id is None else str(guild_id)


class PrivacyService:
    """Export and erase a member's data; delete images past their server's retention."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        accounts: AccountService,
        images: ImageRepository,
        *,
        secret: Callable[[], Awaitable[bytes]],
        link_minutes: int = 60,
        retention_days: int = 0,
        guild_retention: Callable[[], Awaitable[Mapping[int, int]]] | None = None,
        forget_member: Callable[[int], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.accounts = accounts
        self.images = images
        self._secret = secret
        self.link_minutes = link_minutes
        self.retention_days = retention_days
        self._guild_retention = guild_retention
        self._forget_member = forget_member
        self.clock = clock

    # Export ------------------------------------------------------------------------------

    async def export(self, identity: Identity, *, with_files: bool = True) -> Archive:
        """The member's archive (NothingStored if the bot holds nothing about them); without
        `with_files`, the data only (for when the images can't be delivered)."""
        user = await self.accounts.find(identity.discord_id)
        if user is None:
            raise NothingStored()
        return await self.export_user(user.id, with_files=with_files)

    async def export_user(self, user_id: str, *, with_files: bool = True) -> Archive:
        data = await privacy.member_data(self.db, user_id)
        if data is None:
            raise NothingStored()
        handle, name = tempfile.mkstemp(prefix="nanobanana-export-", suffix=".zip")
        os.close(handle)
        path = Path(name)
        try:
            missing = await self._write(path, data, with_files)
            size = (await asyncio.to_thread(path.stat)).st_size
        except BaseException:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise
        servers = sorted({_server_of(i.get("guild_id")) for i in data.images})
        return Archive(path, size, len(data.images), servers, missing, with_files)

    async def _write(self, path: Path, data: MemberData, with_files: bool) -> int:
        """Write the zip (files are read one at a time: memory stays at one image)."""
        missing: list[str] = []
        by_server: dict[str, list[dict[str, Any]]] = {}
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for image in data.images:
                server = _server_of(image.get("guild_id"))
                entry = {k: v for k, v in image.items() if k not in ("storage_url",
                                                                      "thumbnail_url")}  # fmt: skip
                if with_files and image.get("storage_key"):
                    metadata = image.get("metadata") or {}
                    fmt = (
                        str(metadata.get("format", "")).upper()
                        if isinstance(metadata, dict)
                        else ""
                    )
                    ext = _EXTENSIONS.get(fmt) or str(image["storage_key"]).rsplit(".", 1)[-1]
                    member = f"servers/{server}/images/{image['id']}.{ext}"
                    try:
                        body = await self.store.get(str(image["storage_key"]))
                    except StorageError:
                        missing.append(str(image["id"]))
                    else:
                        # Images are compressed already: stored as they are.
                        await asyncio.to_thread(archive.writestr, member, body, zipfile.ZIP_STORED)
                        entry["file"] = member.split("/", 2)[2]
                by_server.setdefault(server, []).append(entry)
            for server, entries in by_server.items():
                archive.writestr(f"servers/{server}/images.json", _json_bytes(entries))
            for wallet in data.wallets:
                rows = [r for r in data.ledger if r.get("wallet_id") == wallet["id"]]
                where = "global" if wallet.get("guild_id") is None else str(wallet["guild_id"])
                archive.writestr(
                    f"ledger/{where}.json", _json_bytes({"wallet": wallet, "transactions": rows})
                )
            for character in data.characters:
                # Your own characters: their details, and their images with the files.
                server = _server_of(character.get("guild_id"))
                refs = character.get("refs")
                character["files"] = []
                for number, key in enumerate(sorted(keys_in(refs)), start=1):
                    if not with_files:
                        break
                    name = key.rsplit("/", 1)[-1]
                    ext = name.rsplit(".", 1)[-1] if "." in name else "bin"
                    member = f"servers/{server}/characters/{character['id']}/{number}.{ext}"
                    try:
                        body = await self.store.get(key)
                    except StorageError:
                        missing.append(key)
                        continue
                    await asyncio.to_thread(archive.writestr, member, body, zipfile.ZIP_STORED)
                    character["files"].append(member.split("/", 2)[2])
            if data.characters:
                archive.writestr("characters.json", _json_bytes(data.characters))
            if data.conversations:
                archive.writestr("conversations.json", _json_bytes(data.conversations))
            if data.preferences:
                archive.writestr("preferences.json", _json_bytes(data.preferences[0]))
            archive.writestr("profile.json", _json_bytes(data.user))
            archive.writestr("jobs.json", _json_bytes(data.jobs))
            archive.writestr("api_tokens.json", _json_bytes(data.api_tokens))
            archive.writestr("web_sessions.json", _json_bytes(data.web_sessions))
            if data.blocks:
                archive.writestr("blocks.json", _json_bytes(data.blocks))
            note = ""
            if missing:
                note = f"\n{len(missing)} image file(s) could not be read: {', '.join(missing)}\n"
            if not with_files and data.images:
                note += "\nThe image files are not included (too large to send here).\n"
            archive.writestr(
                "README.txt", _README.format(when=to_iso(self.clock()), missing=note).encode()
            )
        return len(missing)

    async def _signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(await self._secret(), salt="nanobanana.privacy-export")

    async def link_token(self, identity: Identity) -> str:
        """A signed token for the member's archive, valid `link_minutes` (NothingStored if
        the bot holds nothing about them)."""
        user = await self.accounts.find(identity.discord_id)
        if user is None:
            raise NothingStored()
        return str((await self._signer()).dumps({"u": user.id, "d": str(identity.discord_id)}))

    async def open_link(self, token: str) -> Archive | None:
        """The archive a link names, built now; None if the link is forged, expired, or its
        member has been erased since."""
        try:
            payload = (await self._signer()).loads(token, max_age=self.link_minutes * 60)
        except BadSignature:
            return None
        if not isinstance(payload, dict):
            return None
        user = await self.accounts.get(str(payload.get("u")))
        if user is None or str(user.discord_id) != str(payload.get("d")):
            return None
        try:
            return await self.export_user(user.id)
        except NothingStored:
            return None

    # Erase -------------------------------------------------------------------------------

    async def erase(self, identity: Identity) -> Erased:
        """Erase everything the bot holds about the member but their anonymous ledger.
        NothingStored if it holds nothing; JobsRunning (nothing changed) while a job of
        theirs is in progress."""
        user = await self.accounts.find(identity.discord_id)
        if user is None:
            raise NothingStored()
        try:
            erasure = await privacy.erase_member(self.db, user.id)
        except JobsInProgress as busy:
            raise JobsRunning(count=busy.count) from None
        deleted = 0
        for key in erasure.object_keys:
            try:
                await self.store.delete(key)
                deleted += 1
            except StorageError as error:
                # Left as an orphan: the storage sweep and `fsck --repair` remove it.
                log.warning("erase: could not delete an object (%s); left for the sweep", error)
        if self._forget_member is not None:
            self._forget_member(identity.discord_id)
        log.info(
            "a member erased their data: %d image(s), %d object(s); %d ledger row(s) kept as "
            "anonymous user %s",
            len(erasure.image_ids), deleted, erasure.ledger_rows, erasure.anonymous_id,
        )  # fmt: skip
        return Erased(erasure, deleted)

    # Retention ---------------------------------------------------------------------------

    async def sweep_retention(self) -> int:
        """Delete images older than their server's retention (its /settings value, else
        IMAGE_RETENTION_DAYS; 0 keeps them) with their objects; how many were deleted."""
        overrides = dict(await self._guild_retention()) if self._guild_retention else {}
        now = self.clock()
        deleted = 0
        plans: list[tuple[int | None, int]] = [(g, d) for g, d in overrides.items() if d > 0]
        if self.retention_days > 0:
            plans.append((None, self.retention_days))
        for guild_id, days in plans:
            cutoff = to_iso(now - timedelta(days=days))
            while True:
                ids = await privacy.images_older_than(
                    self.db, cutoff, guild_id=guild_id, exclude_guilds=sorted(overrides),
                    limit=SWEEP_BATCH,
                )  # fmt: skip
                if not ids:
                    break
                for image_id in ids:
                    image = await self.images.delete(image_id)
                    if image is None:
                        continue
                    deleted += 1
                    row = {
                        "storage_key": image.storage_key,
                        "thumbnail_key": image.thumbnail_key,
                        "metadata": image.metadata,
                    }
                    for key in privacy.image_object_keys(row):
                        with contextlib.suppress(StorageError):
                            await self.store.delete(key)
                await privacy.forget_posts(self.db, ids)
                if len(ids) < SWEEP_BATCH:
                    break
        if deleted:
            log.info("retention: deleted %d image(s) past their server's retention", deleted)
        return deleted


RETENTION_LOCK = "retention-sweep"
#: How often the retention sweep runs (the first run is at start-up).
RETENTION_EVERY = 3600.0


class RetentionSweep:
    """Runs `PrivacyService.sweep_retention` now and every hour, in one process at a time
    (under a named lock in the database)."""

    def __init__(
        self,
        privacy: PrivacyService,
        holding: Callable[[str], contextlib.AbstractAsyncContextManager[bool]],
        *,
        every: float = RETENTION_EVERY,
    ) -> None:
        self.privacy = privacy
        self.holding = holding
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int | None:
        """One sweep if this process takes the lock (None: another process is sweeping)."""
        async with self.holding(RETENTION_LOCK) as mine:
            if not mine:
                return None
            return await self.privacy.sweep_retention()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention-sweep")

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("the image retention sweep failed; it runs again in an hour")
            await asyncio.sleep(self.every)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
