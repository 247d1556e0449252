"""Galleries: keyset pages of nine with a numbered contact sheet; opening and deleting images."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass

from bot import imaging
from bot.services.errors import ImageNotFound, NotAllowed
from storage.images import ImageRepository, history_keys
from storage.models import Image, ImageType
from storage.objects import ObjectStore, StorageError

log = logging.getLogger(__name__)

PAGE_SIZE = 9


@dataclass(frozen=True)
class GalleryPage:
    """One page: its images, the contact sheet (PNG), and where the next page starts."""

    images: list[Image]
    sheet: bytes | None
    next_cursor: str | None
    page_number: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))


@dataclass(frozen=True)
class OpenedImage:
    image: Image
    data: bytes


class GalleryService:
    """Read a user's images page by page; open or delete one (owner or admin)."""

    def __init__(self, *, images: ImageRepository, store: ObjectStore) -> None:
        self.images = images
        self.store = store

    async def page(
        self,
        user_id: str,
        kind: ImageType | None = None,
        *,
        cursor: str | None = None,
        page_number: int = 1,
    ) -> GalleryPage:
        """The page after `cursor` (first page without one), newest first."""
        listing = await self.images.list_by_user(user_id, kind, limit=PAGE_SIZE, cursor=cursor)
        total = await self.images.count_by_user(user_id, kind)
        sheet = None
        if listing.items:
            thumbs = await asyncio.gather(*(self._thumbnail(i) for i in listing.items))
            start = (page_number - 1) * PAGE_SIZE + 1
            sheet = await asyncio.to_thread(imaging.contact_sheet, thumbs, start_number=start)
        return GalleryPage(listing.items, sheet, listing.next_cursor, page_number, total)

    async def _thumbnail(self, image: Image) -> bytes:
        # A missing thumbnail must not break the page: the sheet draws a placeholder cell.
        key = image.thumbnail_key or image.storage_key
        if not key:
            return b""
        try:
            return await self.store.get(key)
        except StorageError:
            log.warning("thumbnail missing for image %s", image.id)
            return b""

    async def open(self, image_id: str) -> OpenedImage:
        """A finished image with its bytes."""
        image = await self.images.get(image_id)
        if image is None or not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        try:
            data = await self.store.get(image.storage_key)
        except StorageError:
            raise ImageNotFound() from None
        return OpenedImage(image, data)

    async def delete(self, image_id: str, *, actor_user_id: str, actor_is_admin: bool) -> Image:
        """Delete row, image, thumbnail and inputs; only the owner or an admin may."""
        image = await self.images.get(image_id)
        if image is None:
            raise ImageNotFound()
        if image.user_id != actor_user_id and not actor_is_admin:
            raise NotAllowed("error.not_allowed")
        # Row first: a failed object delete leaves an orphan object for the reconciler to
        # sweep, never a gallery row whose image is gone.
        if not await self.images.delete(image.id):
            raise ImageNotFound()
        keys = [
            image.storage_key,
            image.thumbnail_key,
            *image.metadata.get("input_keys", []),
            *history_keys(image.metadata.get("history")),
        ]
        for key in keys:
            if key:
                with contextlib.suppress(StorageError):
                    await self.store.delete(str(key))
        return image
