"""Style presets: a server's moderators name styles (a prompt suffix, and optionally reference
images kept in object storage like uploads); members pick one with `/generate style:`.

The rules live here: who may add or delete (that server's moderators and bot admins, as
/settings), what a name and a suffix may be, how many styles a server has, and how a style
changes a prompt. Orders (bot.services.orders) apply the style before anything is charged, so
the styled prompt is checked (length, blocklist) like any other.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.services.errors import InvalidInput
from bot.services.media import Declared, InputImages
from bot.services.permissions import Actor, PermissionService
from storage.objects import ObjectStore, StorageError
from storage.presets import StylePreset, StylePresetRepository
from storage.timeutil import utcnow_iso

__all__ = ["MAX_STYLES", "StyleImage", "StylePreset", "StyleService"]

#: Styles a server may keep (Discord shows at most 25 autocomplete choices).
MAX_STYLES = 25
MAX_NAME_CHARS = 32
MAX_SUFFIX_CHARS = 300
#: Reference images a style may carry (a member's own images come on top: the model's limit
#: on input images is checked when the job is priced).
MAX_STYLE_IMAGES = 2
_NAME = re.compile(r"^[\w][\w \-']*$")
#: How long a server's styles are used from memory (another process may have changed them;
#: this process's own changes apply at once).
CACHE_SECONDS = 30.0
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True)
class StyleImage:
    """A reference image offered for a new style: what is declared of it, and its bytes."""

    declared: Declared
    read: Callable[[], Awaitable[bytes]]


class StyleService:
    """Each server's style presets."""

    def __init__(
        self,
        repo: StylePresetRepository,
        *,
        store: ObjectStore,
        inputs: InputImages,
        permissions: PermissionService,
    ) -> None:
        self.repo = repo
        self.store = store
        self.inputs = inputs
        self.permissions = permissions
        self._cache: dict[int, tuple[float, list[StylePreset]]] = {}

    async def styles(self, guild_id: int | None) -> list[StylePreset]:
        """The server's styles by name (from memory when read lately; none in a DM)."""
        if guild_id is None:
            return []
        cached = self._cache.get(guild_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        found = await self.repo.list(guild_id)
        self._cache[guild_id] = (time.monotonic(), found)
        return found

    async def find(self, guild_id: int | None, name: str) -> StylePreset:
        """A style of the server by name (any case); InvalidInput when it has none such."""
        wanted = " ".join(name.split()).casefold()
        for preset in await self.styles(guild_id):
            if preset.name.casefold() == wanted:
                return preset
        raise InvalidInput("style.unknown", name=name[:MAX_NAME_CHARS])

    @staticmethod
    def apply(prompt: str, preset: StylePreset) -> str:
        """The member's prompt in the style: the style's suffix after it."""
        return f"{prompt.strip().rstrip('.,;')}, {preset.suffix}"

    async def references(self, preset: StylePreset) -> list[tuple[str, bytes]]:
        """The style's reference images as (name, bytes); refused (free) when storage lost
        one."""
        found = []
        for key in preset.reference_keys:
            try:
                found.append((key.rsplit("/", 1)[-1], await self.store.get(key)))
            except StorageError:
                raise InvalidInput("style.image_missing", name=preset.name) from None
        return found

    # Moderators -------------------------------------------------------------------------

    def check_can_manage(self, actor: Actor, guild_id: int) -> None:
        """The server's moderators and bot admins manage its styles (NotAllowed otherwise)."""
        self.permissions.check_change_settings(actor, guild_id)

    async def add(
        self,
        actor: Actor,
        guild_id: int,
        name: str,
        suffix: str,
        images: Sequence[StyleImage] = (),
    ) -> StylePreset:
        """A new style for the server (its moderators and bot admins). Checked before any
        download: the name, the suffix, the images as declared; then the images go through
        the input pipeline into object storage, and the row is written. Refused (nothing
        left behind: no row, no object) when the name is taken or the server is full."""
        self.check_can_manage(actor, guild_id)
        clean_name = " ".join(name.split())
        if not 1 <= len(clean_name) <= MAX_NAME_CHARS or not _NAME.match(clean_name):
            raise InvalidInput("style.bad_name", limit=MAX_NAME_CHARS)
        clean_suffix = " ".join(suffix.split())
        if not 1 <= len(clean_suffix) <= MAX_SUFFIX_CHARS:
            raise InvalidInput("style.bad_suffix", limit=MAX_SUFFIX_CHARS)
        if len(images) > MAX_STYLE_IMAGES:
            raise InvalidInput("style.too_many_images", limit=MAX_STYLE_IMAGES)
        for image in images:
            self.inputs.check_declared(image.declared)
        existing = await self.repo.list(guild_id)
        if any(p.name.casefold() == clean_name.casefold() for p in existing):
            raise InvalidInput("style.exists", name=clean_name)
        if len(existing) >= MAX_STYLES:
            raise InvalidInput("style.full", limit=MAX_STYLES)
        preset_id = str(uuid.uuid4())
        keys: list[str] = []
        try:
            for number, image in enumerate(images, start=1):
                shrunk = await self.inputs.prepare(await image.read(), image.declared.name)
                extension = _EXTENSIONS.get(shrunk.mime_type, "png")
                key = f"styles/{guild_id}/{preset_id}/{number}.{extension}"
                keys.append(key)
                await self.store.put(key, shrunk.data, shrunk.mime_type)
            preset = StylePreset(
                id=preset_id, guild_id=guild_id, name=clean_name, suffix=clean_suffix,
                reference_keys=tuple(keys),
                created_by=actor.user.id if actor.user is not None else None,
                created_at=utcnow_iso(),
            )  # fmt: skip
            outcome = await self.repo.add(preset, limit=MAX_STYLES)
            if outcome == "exists":
                raise InvalidInput("style.exists", name=clean_name)
            if outcome == "full":
                raise InvalidInput("style.full", limit=MAX_STYLES)
        except BaseException:
            await self._delete_objects(keys)
            raise
        self._cache.pop(guild_id, None)
        return preset

    async def delete(self, actor: Actor, guild_id: int, name: str) -> StylePreset:
        """Remove a style and its images (the server's moderators and bot admins)."""
        self.check_can_manage(actor, guild_id)
        preset = await self.find_fresh(guild_id, name)
        removed = await self.repo.delete(guild_id, preset.name)
        self._cache.pop(guild_id, None)
        if removed is None:
            raise InvalidInput("style.unknown", name=name[:MAX_NAME_CHARS])
        await self._delete_objects(removed.reference_keys)
        return removed

    async def find_fresh(self, guild_id: int, name: str) -> StylePreset:
        """`find`, reading the server's styles now (for changes)."""
        self._cache.pop(guild_id, None)
        return await self.find(guild_id, name)

    async def _delete_objects(self, keys: Sequence[str]) -> None:
        for key in keys:
            # A leftover object is harmless (nothing points to it); a failed delete must not
            # hide the error the member should read.
            with contextlib.suppress(StorageError):
                await self.store.delete(key)
