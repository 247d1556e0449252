"""The character and style library: named sets of reference images a member saves once and
sends with any /generate (`character:<name>`), so a subject or a style stays the same.

A member's characters are theirs, in the server they saved them in; a server's moderators
also keep a shared style sheet that every member there can use. The gallery's rules apply:
server-scoped; the owner, the server's moderators and bot admins may delete (a shared one:
moderators and bot admins). The images come through the one input pipeline (checked and
shrunk) and are copied into the store under `characters/`: never Discord's links.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bot.nanobanana import InputImage
from bot.services.errors import ImageNotFound, InvalidInput, NotAllowed
from bot.services.permissions import Actor, PermissionService
from storage.characters import (
    SHARED,
    Character,
    CharacterRepository,
    NameTaken,
    Reference,
    TooManyCharacters,
    name_key,
)
from storage.objects import ObjectStore, StorageError

#: A name as members type it: letters, digits, spaces and a few marks, 1 to 32 characters.
NAME = re.compile(r"^[\w][\w .'\-]{0,31}$")
#: References one character keeps (each counts against the model's limit when sent).
MAX_REFERENCES = 6
#: Characters one owner (a member, or a server's shared sheet) keeps in a server.
MAX_PER_OWNER = 25
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class CharacterNotFound(ImageNotFound):
    """No such character the actor may use (a "not found", as an image is)."""

    key = "character.not_found"


@dataclass(frozen=True)
class Saved:
    """A character as its owner sees it: the row and whether the actor may delete it."""

    character: Character
    deletable: bool


class CharacterService:
    """Save, list, find, delete characters, and read their references back for a job."""

    def __init__(
        self, repo: CharacterRepository, store: ObjectStore, permissions: PermissionService
    ) -> None:
        self.repo = repo
        self.store = store
        self.permissions = permissions

    @staticmethod
    def check_name(name: str) -> str:
        cleaned = " ".join((name or "").split())
        if not NAME.fullmatch(cleaned):
            raise InvalidInput("character.bad_name")
        return cleaned

    async def save(
        self,
        actor: Actor,
        guild_id: int,
        name: str,
        images: Sequence[InputImage],
        *,
        shared: bool = False,
    ) -> Character:
        """A new character of `actor` (of the server with `shared`: moderators only) from
        `images` (already through the input pipeline): objects first, then the row; if the
        row is refused, the objects go."""
        cleaned = self.check_name(name)
        if not images:
            raise InvalidInput("character.no_image")
        if len(images) > MAX_REFERENCES:
            raise InvalidInput("character.too_many", limit=MAX_REFERENCES, count=len(images))
        if shared and not self.permissions.moderates(actor, guild_id):
            raise NotAllowed("character.shared_moderators")
        if actor.user is None:
            raise NotAllowed()
        character_id = str(uuid.uuid4())
        folder = f"characters/{guild_id}/{character_id}"
        refs = [
            Reference(
                key=f"{folder}/{n}.{_EXTENSIONS.get(i.mime_type, 'png')}", mime_type=i.mime_type
            )
            for n, i in enumerate(images)
        ]
        written: list[str] = []
        try:
            for ref, image in zip(refs, images, strict=True):
                await self.store.put(ref.key, image.data, ref.mime_type)
                written.append(ref.key)
            return await self.repo.create(
                guild_id=guild_id, owner_id=SHARED if shared else actor.user.id,
                created_by=actor.user.id, name=cleaned, refs=refs, max_per_owner=MAX_PER_OWNER,
                character_id=character_id,
            )  # fmt: skip
        except BaseException as error:
            for key in written:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.delete(key))
            if isinstance(error, NameTaken):
                raise InvalidInput("character.name_taken", name=cleaned) from None
            if isinstance(error, TooManyCharacters):
                raise InvalidInput("character.too_many_saved", limit=error.limit) from None
            raise

    async def listing(self, actor: Actor, guild_id: int) -> list[Saved]:
        """What the actor sees in a server: their own characters and the server's."""
        user_id = actor.user.id if actor.user is not None else None
        return [
            Saved(c, self.may_delete(actor, c)) for c in await self.repo.visible(guild_id, user_id)
        ]

    async def find(self, actor: Actor, guild_id: int, name: str) -> Character:
        """The character of that name the actor may use here: their own first, else the
        server's; CharacterNotFound otherwise."""
        wanted = name_key(name)
        user_id = actor.user.id if actor.user is not None else None
        for character in await self.repo.visible(guild_id, user_id):
            if name_key(character.name) == wanted:
                return character
        raise CharacterNotFound(name=shorten(name))

    async def find_of(self, guild_id: int, user_id: str | None, name: str) -> Character:
        """A member's own character of that name in a server (for a moderator's delete)."""
        wanted = name_key(name)
        if user_id is not None:
            for character in await self.repo.visible(guild_id, user_id):
                if not character.shared and name_key(character.name) == wanted:
                    return character
        raise CharacterNotFound(name=shorten(name))

    async def by_id(self, actor: Actor, guild_id: int, character_id: str) -> Character:
        """A character by id, if the actor may see it in that server."""
        character = await self.repo.get(character_id)
        user_id = actor.user.id if actor.user is not None else None
        if (
            character is None
            or character.guild_id != guild_id
            or not (character.shared or character.owner_id == user_id)
        ):
            raise CharacterNotFound(name=character_id[:8])
        return character

    def may_delete(self, actor: Actor, character: Character) -> bool:
        """Its owner (not of a shared one), the server's moderators, bot admins."""
        own = actor.user is not None and character.owner_id == actor.user.id
        return own or self.permissions.moderates(actor, character.guild_id)

    async def delete(self, actor: Actor, character: Character) -> Character:
        """Delete a character (row, then its objects)."""
        if not self.may_delete(actor, character):
            raise NotAllowed("character.not_yours")
        deleted = await self.repo.delete(character.id)
        if deleted is None:
            raise CharacterNotFound(name=shorten(character.name))
        for ref in deleted.refs:
            with contextlib.suppress(StorageError):
                await self.store.delete(ref.key)
        return deleted

    async def references(self, character: Character) -> tuple[InputImage, ...]:
        """The character's images, read back from the store, for a job."""
        try:
            return tuple(
                [InputImage(await self.store.get(r.key), r.mime_type) for r in character.refs]
            )
        except StorageError:
            raise CharacterNotFound(name=shorten(character.name)) from None

    async def reference(self, character: Character, number: int) -> InputImage:
        """One of the character's images (0 = the first), for the web gallery."""
        if not 0 <= number < len(character.refs):
            raise CharacterNotFound(name=shorten(character.name))
        ref = character.refs[number]
        try:
            return InputImage(await self.store.get(ref.key), ref.mime_type)
        except StorageError:
            raise CharacterNotFound(name=shorten(character.name)) from None

    async def names(self, actor: Actor, guild_id: int, typed: str = "") -> list[Character]:
        """Characters whose name contains `typed` (for autocomplete), at most 25."""
        wanted = name_key(typed)
        user_id = actor.user.id if actor.user is not None else None
        found = await self.repo.visible(guild_id, user_id)
        return [c for c in found if wanted in name_key(c.name)][:25]


def shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
