"""Galleries: keyset pages of nine with a numbered contact sheet; finding, opening and deleting
images, each as the permission rules allow.

In a server, a gallery shows that server's images only; in a DM, a member sees their own images
from every server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Protocol

from bot import imaging
from bot.services.errors import ImageNotFound, ImagesBusy, InvalidInput
from bot.services.imagework import ImageWork
from bot.services.permissions import Actor, ImageActions, PermissionService
from storage.errors import InvalidCursor
from storage.images import MAX_PAGE_SIZE, ImageRepository, history_keys
from storage.models import SHORT_ID_LENGTH, Image, ImageType, Page, User
from storage.objects import ObjectStore, StorageError
from storage.users import UserRepository

log = logging.getLogger(__name__)

PAGE_SIZE = 9
#: The most images one page of a personal listing (API, web gallery) may hold.
MAX_LIST_SIZE = MAX_PAGE_SIZE
# How long a signed link to an image in the bucket works (the web gallery and the API).
LINK_SECONDS = 300
_UUID_CHARS = frozenset("0123456789abcdef-")
# How many images sharing a short id are looked at when telling a match from an ambiguity.
_PREFIX_CANDIDATES = 20
#: Contact sheets kept in memory (bytes, least recently used dropped first).
SHEET_CACHE_BYTES = 32 * 1024 * 1024
#: The sheets' format: JPEG, the fastest to make of PNG, WebP and JPEG (bench_bot).
SHEET_MIME = "image/jpeg"


@dataclass(frozen=True)
class GalleryPage:
    """One page: its images, the contact sheet (JPEG; None once released, or when the page
    is empty), and where the next page starts."""

    images: list[Image]
    sheet: bytes | None
    next_cursor: str | None
    page_number: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PAGE_SIZE))

    @property
    def start_number(self) -> int:
        """The number of the page's first image on the sheet."""
        return (self.page_number - 1) * PAGE_SIZE + 1

    def released(self) -> GalleryPage:
        """The page without its sheet (a view keeps this once the sheet is sent)."""
        return replace(self, sheet=None)


class SheetCache:
    """Contact sheets by what they show (the page's images, their thumbnails and numbers),
    so a sheet is made once and reused until the member's images on that page change (a new
    image, a deletion: the page then lists other images, hence another key). Bounded in
    bytes; least recently used first out."""

    def __init__(self, max_bytes: int = SHEET_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._sheets: OrderedDict[tuple[object, ...], bytes] = OrderedDict()

    @staticmethod
    def key(images: list[Image], start: int) -> tuple[object, ...]:
        return (start, *((i.id, i.thumbnail_key or i.storage_key) for i in images))

    def get(self, key: tuple[object, ...]) -> bytes | None:
        sheet = self._sheets.get(key)
        if sheet is None:
            self.misses += 1
            return None
        self.hits += 1
        self._sheets.move_to_end(key)
        return sheet

    def put(self, key: tuple[object, ...], sheet: bytes) -> None:
        if len(sheet) > self.max_bytes:
            return
        old = self._sheets.pop(key, None)
        self.bytes -= len(old) if old is not None else 0
        self._sheets[key] = sheet
        self.bytes += len(sheet)
        while self.bytes > self.max_bytes:
            _, dropped = self._sheets.popitem(last=False)
            self.bytes -= len(dropped)


class UnstoredImages(Protocol):
    """Results shown before they are stored (bot.services.generation delivers first)."""

    def shown(self, image_id: str) -> Image | None: ...

    async def settled(self, image: Image) -> Image: ...


@dataclass(frozen=True)
class ImageContext:
    """An image with its owner's Discord id (for "only <owner> can use this")."""

    image: Image
    owner_discord_id: int | None

    @property
    def owner_mention(self) -> str:
        return f"<@{self.owner_discord_id}>" if self.owner_discord_id else "?"


@dataclass(frozen=True)
class OpenedImage:
    image: Image
    data: bytes
    actions: ImageActions


class GalleryService:
    """Read galleries page by page; find, open or delete one image."""

    def __init__(
        self,
        *,
        images: ImageRepository,
        users: UserRepository,
        store: ObjectStore,
        permissions: PermissionService,
        imagework: ImageWork | None = None,
        sheets: SheetCache | None = None,
        unstored: UnstoredImages | None = None,
    ) -> None:
        self.images = images
        #: Results shown and still being stored: their buttons work before the row exists.
        self.unstored = unstored
        self.users = users
        self.store = store
        self.permissions = permissions
        self.imagework = imagework
        self.sheets = sheets or SheetCache()

    async def page(
        self,
        viewer: Actor,
        owner: User,
        kind: ImageType | None = None,
        *,
        cursor: str | None = None,
        page_number: int = 1,
    ) -> GalleryPage:
        """The page after `cursor` (first page without one), newest first: the owner's images
        of the viewer's server, or in a DM all of them, with its contact sheet (see
        `listing` and `sheet`)."""
        page = await self.listing(viewer, owner, kind, cursor=cursor, page_number=page_number)
        return replace(page, sheet=await self.sheet(page))

    async def listing(
        self,
        viewer: Actor,
        owner: User,
        kind: ImageType | None = None,
        *,
        cursor: str | None = None,
        page_number: int = 1,
    ) -> GalleryPage:
        """A page without its sheet: the images (a keyset read on an index) and the total
        (the gallery counters): the same cost at page 1 and at page 10,000."""
        if owner.discord_id is not None:
            self.permissions.check_see_gallery(viewer, owner.discord_id)
        guild_id = viewer.guild_id
        listing = await self.images.list_by_user(
            owner.id, kind, limit=PAGE_SIZE, cursor=cursor, guild_id=guild_id
        )
        total = await self.images.count_by_user(owner.id, kind, guild_id=guild_id)
        return GalleryPage(listing.items, None, listing.next_cursor, page_number, total)

    async def sheet(self, page: GalleryPage) -> bytes | None:
        """The page's numbered contact sheet (JPEG), from the cache or made in the image pool
        (ImagesBusy when the pool is full: nothing waits there without end)."""
        if not page.images:
            return None
        key = self.sheets.key(page.images, page.start_number)
        cached = self.sheets.get(key)
        if cached is not None:
            return cached
        if self.imagework is not None and not self.imagework.has_room():
            self.imagework.refused += 1
            raise ImagesBusy()
        thumbs = await asyncio.gather(*(self.thumbnail(i) for i in page.images))
        if self.imagework is not None:
            sheet = await self.imagework.run(
                imaging.contact_sheet, thumbs, start_number=page.start_number
            )
        else:
            sheet = await asyncio.to_thread(
                imaging.contact_sheet, thumbs, start_number=page.start_number
            )
        self.sheets.put(key, sheet)
        return sheet

    async def fit(self, data: bytes, limit: int, *, wait: bool = False) -> tuple[bytes, str]:
        """An image within `limit` bytes for an upload (unchanged when it fits), shrunk in
        the image pool (ImagesBusy when it is full, unless `wait`: a result being delivered
        waits for its turn)."""
        if len(data) <= limit:
            return data, imaging.sniff_mime(data) or "application/octet-stream"
        if self.imagework is not None:
            return await self.imagework.run(imaging.fit_to_size, data, limit, wait=wait)
        return await asyncio.to_thread(imaging.fit_to_size, data, limit)

    # Personal access (HTTP API, web gallery) -------------------------------------------

    async def list_own(
        self,
        actor: Actor,
        kind: ImageType | None = None,
        *,
        cursor: str | None = None,
        limit: int = 24,
    ) -> Page[Image]:
        """The actor's finished images, newest first, by keyset: of the server they act in, or
        of every server when they act in none. An account-less actor has none."""
        if not 1 <= limit <= MAX_LIST_SIZE:
            raise InvalidInput("api.bad_limit", max=MAX_LIST_SIZE)
        if actor.user is None:
            return Page([], None)
        try:
            return await self.images.list_by_user(
                actor.user.id, kind, limit=limit, cursor=cursor, guild_id=actor.guild_id
            )
        except InvalidCursor:
            raise InvalidInput("api.bad_cursor") from None

    async def count_own(self, actor: Actor, kind: ImageType | None = None) -> int:
        if actor.user is None:
            return 0
        return await self.images.count_by_user(actor.user.id, kind, guild_id=actor.guild_id)

    async def own(self, actor: Actor, image_id: str, *, finished: bool = True) -> Image:
        """One of the actor's own images (see PermissionService.can_reach_own), by its full id;
        only a finished one unless `finished` is False (a job's state)."""
        ref = image_id.strip().lower()
        if len(ref) != 36 or not set(ref) <= _UUID_CHARS:
            raise ImageNotFound()
        image = await self.images.get(ref)
        if image is None:
            raise ImageNotFound()
        self.permissions.check_reach_own(actor, image)
        if finished and (not image.is_ready or not image.storage_key):
            raise ImageNotFound()
        return image

    async def read(self, image: Image, *, thumbnail: bool = False) -> bytes:
        """The bytes of an image (or its thumbnail) the caller already may see."""
        key = (image.thumbnail_key if thumbnail else None) or image.storage_key
        if not key:
            raise ImageNotFound()
        try:
            return await self.store.get(key)
        except StorageError:
            raise ImageNotFound() from None

    async def link(self, image: Image, *, thumbnail: bool = False) -> str | None:
        """A short-lived signed URL to the image in the bucket, or None when the store can't
        sign (local files: the app serves the bytes itself, after its own access check)."""
        key = (image.thumbnail_key if thumbnail else None) or image.storage_key
        if not key:
            raise ImageNotFound()
        try:
            return await self.store.signed_url(key, LINK_SECONDS)
        except StorageError:
            return None

    async def delete_own(self, actor: Actor, image_id: str) -> Image:
        """Delete one of the actor's own images (row, image, thumbnail, inputs)."""
        image = await self.own(actor, image_id)
        return await self.delete(actor, ImageContext(image, actor.discord_id))

    async def thumbnail(self, image: Image) -> bytes:
        """The image's thumbnail (or the image), b"" if missing: a missing thumbnail must not
        break a page (the sheet draws a placeholder cell) or a reply."""
        key = image.thumbnail_key or image.storage_key
        if not key:
            return b""
        try:
            return await self.store.get(key)
        except StorageError:
            log.warning("thumbnail missing for image %s", image.id)
            return b""

    async def context(self, image_id: str, *, settled: bool = False) -> ImageContext | None:
        """An image and its owner (what a button bound to it needs), or None. A result shown
        and still being stored is found as shown; with `settled`, once it is stored (a
        Delete waits for it: there must be a row and objects to delete)."""
        image = await self.images.get(image_id)
        shown = self.unstored.shown(image_id) if self.unstored is not None else None
        if shown is not None:
            image = shown
            if settled and self.unstored is not None:
                try:
                    image = await self.unstored.settled(shown)
                except ImageNotFound:
                    return None
        if image is None:
            return None
        owner = await self.users.get(image.user_id)
        return ImageContext(image, owner.discord_id if owner else None)

    async def find(self, actor: Actor, reference: str) -> Image:
        """The image a member means by a full or short id, among those they may see."""
        ref = reference.strip().lower()
        if len(ref) < SHORT_ID_LENGTH:
            raise InvalidInput("gallery.bad_id", length=SHORT_ID_LENGTH)
        candidates = await self.images.find_by_prefix(ref, limit=_PREFIX_CANDIDATES)
        visible = [i for i in candidates if self.permissions.can_see_image(actor, i)]
        if not visible:
            raise ImageNotFound()
        if len(visible) > 1:
            raise InvalidInput("gallery.ambiguous_id", id=ref)
        return visible[0]

    async def open(self, actor: Actor, reference: str) -> OpenedImage:
        """A finished image the actor may see, with its bytes and what they may do with it."""
        image = await self.find(actor, reference)
        if not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        try:
            data = await self.store.get(image.storage_key)
        except StorageError:
            raise ImageNotFound() from None
        return OpenedImage(image, data, self.permissions.image_actions(actor, image))

    async def delete(self, actor: Actor, context: ImageContext) -> Image:
        """Delete row, image, thumbnail and inputs: the owner, a moderator of the image's own
        server (acting there) or a bot admin."""
        image = context.image
        self.permissions.check_delete_image(actor, image, context.owner_mention)
        # Row first: a failed object delete leaves an orphan object for the reconciler to
        # sweep, never a gallery row whose image is gone.
        deleted = await self.images.delete(image.id)
        if deleted is None:
            raise ImageNotFound()
        # The keys of the row as deleted, not as loaded: a job shown before it was stored
        # may have completed since the button loaded it.
        image = deleted
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
