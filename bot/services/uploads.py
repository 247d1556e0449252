"""Uploads: verify the bytes, strip metadata, store image and thumbnail, record, charge."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bot import imaging
from bot.services.errors import InvalidInput, NotEnoughCoins, UserFacingError
from bot.services.events import EventBus, ImageCreated
from bot.services.imagework import ImageWork
from bot.services.media import problem_to_error
from bot.services.members import Payer
from bot.services.processes import ProcessLease
from storage.errors import InsufficientCoins, ObjectsReclaimed
from storage.images import ImageRepository, StoredObject
from storage.models import Image
from storage.objects import ObjectStore, StorageError, image_key, thumbnail_key

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_TITLE_CHARS = 100
MAX_DESCRIPTION_CHARS = 1000


@dataclass(frozen=True)
class UploadResult:
    image: Image
    balance: int


class UploadService:
    """Stores user images. On any refusal or failure: no coin taken, no object or row left."""

    def __init__(
        self,
        *,
        images: ImageRepository,
        store: ObjectStore,
        max_bytes: int,
        max_pixels: int = imaging.DEFAULT_MAX_PIXELS,
        imagework: ImageWork | None = None,
        process: ProcessLease | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.images = images
        #: This process's lease: the objects of an upload are recorded as its intents before
        #: they are written, so a storage sweep in another process leaves them alone, and if
        #: this process dies before the row commits they are deleted.
        self.process = process
        self.store = store
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.imagework = imagework
        #: `ImageCreated` for each stored upload (the moderation log).
        self.events = events or EventBus()

    def validate_text(
        self, title: str | None, description: str | None
    ) -> tuple[str | None, str | None]:
        """Trimmed title/description within their limits (None when blank)."""
        title = (title or "").strip() or None
        description = (description or "").strip() or None
        if title and len(title) > MAX_TITLE_CHARS:
            raise InvalidInput("upload.title_too_long", limit=MAX_TITLE_CHARS)
        if description and len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidInput("upload.description_too_long", limit=MAX_DESCRIPTION_CHARS)
        return title, description

    async def _work(self, fn: Callable[..., T], *args: Any) -> T:
        """Image work in the bot's image pool (refused when full), else a thread."""
        if self.imagework is not None:
            return await self.imagework.run(fn, *args)
        return await asyncio.to_thread(fn, *args)

    async def upload(
        self,
        payer: Payer,
        data: bytes,
        *,
        filename: str,
        title: str | None = None,
        description: str | None = None,
    ) -> UploadResult:
        """Check, store and record one image in the payer's server, paid from their wallet;
        raises a UserFacingError on refusal."""
        title, description = self.validate_text(title, description)
        payer.check_affordable()
        try:
            info = await self._work(
                functools.partial(
                    imaging.inspect_image, max_bytes=self.max_bytes, max_pixels=self.max_pixels
                ),
                data,
            )
        except imaging.ImageProblem as problem:
            raise problem_to_error(problem, filename) from None
        clean, info = await self._work(imaging.normalize_upload, data, info)
        thumb = await self._work(imaging.make_thumbnail, clean, 256)
        key = image_key(payer.user_id, title or filename.rsplit(".", 1)[0], info.extension)
        thumb_key = thumbnail_key(key)
        written: list[str] = []
        intents = [key, thumb_key] if self.process is not None else []
        owner = self.process.id if self.process is not None else None
        try:
            if self.process is not None:
                await self.process.leases.add_intents(self.process.id, intents)
            await self.store.put(key, clean, info.mime_type)
            written.append(key)
            await self.store.put(thumb_key, thumb, "image/webp")
            written.append(thumb_key)
            image, balance = await self.images.create_upload(
                user_id=payer.user_id,
                wallet_id=payer.wallet_id,
                guild_id=payer.guild_id,
                cost=payer.cost,
                stored=StoredObject(
                    key, self.store.public_url(key), thumb_key, self.store.public_url(thumb_key)
                ),
                metadata={
                    "width": info.width,
                    "height": info.height,
                    "size": info.size,
                    "format": info.format,
                    "mime_type": info.mime_type,
                    "aspect_ratio": info.aspect_ratio,
                    "original_filename": filename[:200],
                },
                title=title or filename[:MAX_TITLE_CHARS],
                description=description,
                owner=owner,
                intents=intents,
            )
        except asyncio.CancelledError:
            # The row write may still commit on the database thread: keep the objects. If no
            # row points to them, the start-up reconciliation removes them.
            raise
        except BaseException as error:
            for written_key in written:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.delete(written_key))
            if self.process is not None and not isinstance(error, ObjectsReclaimed):
                with contextlib.suppress(Exception):
                    await self.process.leases.forget_intents(self.process.id, intents)
            if isinstance(error, InsufficientCoins):
                raise NotEnoughCoins(error.balance, error.cost) from None
            if isinstance(error, StorageError | ObjectsReclaimed):
                log.warning("upload by user %s not stored: %s", payer.user_id, error)
                raise UserFacingError("reason.storage") from None
            raise
        await self.events.publish(ImageCreated(image))
        return UploadResult(image, balance)
