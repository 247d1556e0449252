"""Content controls of a server: its blocklist, its blocked members, its moderation log, and
the audit of every moderation action (who, what, when, why).

The Discord adapter (cogs/modlog.py) sets `publisher` to post each new image in the server's
log channel, and removes the messages of a deleted image; this service decides what, and
records everything.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.services.accounts import AccountService
from bot.services.content import MAX_ENTRIES, ContentPolicy, check_pattern, check_word
from bot.services.errors import ImageNotFound, InvalidInput, NotAllowed
from bot.services.events import EventBus
from bot.services.gallery import GalleryService, ImageContext
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.settings import CACHE_SECONDS, GuildSettingsService
from storage.images import ImageRepository
from storage.models import Image, User
from storage.moderation import (
    BlockEntry,
    ImagePost,
    MemberBlock,
    ModerationAction,
    ModerationRepository,
)
from storage.timeutil import utcnow
from storage.usage import UsageRepository

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 300
# "30m", "12h", "7d", "2w": how long a member block lasts (empty: until unblocked).
_DURATION = re.compile(r"^\s*(\d{1,4})\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_BLOCK = timedelta(days=3650)
# Servers whose blocklist is remembered at once (forgotten all together past this).
MAX_CACHED_POLICIES = 10_000


@dataclass(frozen=True)
class LogEntry:
    """What the moderation log shows of a new image."""

    image: Image
    channel_id: int
    owner_discord_id: int | None
    cost_micros: int | None  # what the API call cost the host (generations)


@dataclass(frozen=True)
class Deleted:
    """An image deleted by a moderator: the rows gone, and the messages that showed them."""

    image: Image
    image_ids: list[str]
    posts: list[ImagePost]


@dataclass(frozen=True)
class AuditLine:
    action: ModerationAction
    actor_discord_id: int | None
    target_discord_id: int | None


def parse_duration(text: str | None) -> timedelta | None:
    """`30m`, `12h`, `7d`, `2w`; None for empty (no end); InvalidInput otherwise."""
    if text is None or not text.strip():
        return None
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput("moderation.bad_duration", value=text[:30])
    span = timedelta(seconds=int(match[1]) * _UNITS[match[2].lower()])
    if span <= timedelta(0) or span > MAX_BLOCK:
        raise InvalidInput("moderation.bad_duration", value=text[:30])
    return span


class ModerationService:
    """Blocklists, member blocks, the moderation log and the audit."""

    def __init__(
        self,
        repo: ModerationRepository,
        *,
        permissions: PermissionService,
        accounts: AccountService,
        settings: GuildSettingsService,
        gallery: GalleryService,
        images: ImageRepository,
        usage: UsageRepository,
        clock: Callable[[], datetime] = utcnow,
        events: EventBus | None = None,
    ) -> None:
        self.repo = repo
        self.permissions = permissions
        self.accounts = accounts
        self.settings = settings
        self.gallery = gallery
        self.images = images
        self.usage = usage
        self.clock = clock
        #: Where a new image's `LogEntry` goes (the Discord adapter posts it).
        self.events = events or EventBus()
        # Server -> (when read, its blocklist): see `check_prompt`.
        self._policies: dict[int, tuple[float, ContentPolicy]] = {}
        self._refreshing: set[int] = set()

    async def _account(self, actor: Actor) -> User:
        return actor.user or await self.accounts.ensure_user(actor.identity)

    # What members may send ---------------------------------------------------------------

    async def policy(self, guild_id: int) -> ContentPolicy:
        """The server's blocklist, ready to check prompts with (read now; remembered for
        `check_prompt`)."""
        entries = await self.repo.blocklist(guild_id)
        policy = ContentPolicy.of(
            (e.entry for e in entries if e.kind == "WORD"),
            (e.entry for e in entries if e.kind == "PATTERN"),
        )
        if len(self._policies) >= MAX_CACHED_POLICIES and guild_id not in self._policies:
            self._policies.clear()
        self._policies[guild_id] = (time.monotonic(), policy)
        return policy

    async def check_prompt(self, guild_id: int | None, text: str) -> None:
        """Refuse `text` if the server's blocklist does (InvalidInput, a neutral message), from
        memory when the list was read lately, so an adapter can check before its first, public
        answer shows the text. As server settings are: past `CACHE_SECONDS` the remembered
        list is still used while a fresh read runs in the background (another process may
        have changed it; this process's own changes apply at once); a server's first use
        reads it. The reservation checks the list again as read then."""
        if guild_id is None:
            return
        entry = self._policies.get(guild_id)
        if entry is None:
            policy = await self.policy(guild_id)
        else:
            policy = entry[1]
            if time.monotonic() - entry[0] > CACHE_SECONDS and guild_id not in self._refreshing:
                self._refreshing.add(guild_id)
                task = asyncio.get_running_loop().create_task(self.policy(guild_id))
                task.add_done_callback(lambda _: self._refreshing.discard(guild_id))
        policy.check(text)

    async def check_member(self, user: User, guild_id: int) -> None:
        """Refuse a member blocked from generating and uploading in this server."""
        block = await self.repo.block(guild_id, user.id)
        if block is None or (block.until is not None and block.until <= self.clock()):
            return
        if block.until is None:
            raise NotAllowed("moderation.member_blocked", reason=block.reason)
        raise NotAllowed(
            "moderation.member_blocked_until",
            reason=block.reason,
            at=int(block.until.timestamp()),
        )

    # Blocklist ---------------------------------------------------------------------------

    async def add_entry(self, actor: Actor, guild_id: int, entry: str, *, pattern: bool) -> str:
        """Add a word (stored in normal form) or an RE2 pattern; returns what was stored."""
        self.permissions.check_moderate(actor, guild_id)
        value = check_pattern(entry) if pattern else check_word(entry)
        user = await self._account(actor)
        try:
            added = await self.repo.add_entry(
                guild_id, "PATTERN" if pattern else "WORD", value, actor_id=user.id,
                limit=MAX_ENTRIES,
            )  # fmt: skip
        except ValueError:
            raise InvalidInput("blocklist.full", limit=MAX_ENTRIES) from None
        if not added:
            raise InvalidInput("blocklist.already")
        self._policies.pop(guild_id, None)
        return value

    async def remove_entry(self, actor: Actor, guild_id: int, entry: str) -> str:
        """Remove an entry, given as listed (a word may also be given in any spelling)."""
        self.permissions.check_moderate(actor, guild_id)
        listed = {e.entry for e in await self.repo.blocklist(guild_id)}
        for candidate in dict.fromkeys([entry.strip(), normalised_or_empty(entry)]):
            if candidate in listed:
                user = await self._account(actor)
                if await self.repo.remove_entry(guild_id, candidate, actor_id=user.id):
                    self._policies.pop(guild_id, None)
                    return candidate
        raise InvalidInput("blocklist.not_listed")

    async def entries(self, actor: Actor, guild_id: int) -> list[BlockEntry]:
        self.permissions.check_moderate(actor, guild_id)
        return await self.repo.blocklist(guild_id)

    # Members -----------------------------------------------------------------------------

    async def block_member(
        self,
        actor: Actor,
        guild_id: int,
        target: Identity,
        reason: str,
        duration: str | None = None,
    ) -> datetime | None:
        """Block a member from generating and uploading here; returns when it ends."""
        self.permissions.check_moderate(actor, guild_id)
        reason = " ".join((reason or "").split())
        if not reason:
            raise InvalidInput("moderation.reason_needed")
        if len(reason) > MAX_REASON_CHARS:
            raise InvalidInput("moderation.reason_too_long", limit=MAX_REASON_CHARS)
        span = parse_duration(duration)
        if target.is_bot or target.discord_id == actor.discord_id:
            raise InvalidInput("moderation.cannot_block")
        until = self.clock() + span if span is not None else None
        moderator = await self._account(actor)
        member = await self.accounts.ensure_user(target)
        await self.repo.set_block(guild_id, member.id, reason, until, actor_id=moderator.id)
        return until

    async def unblock_member(
        self, actor: Actor, guild_id: int, target: Identity, reason: str = ""
    ) -> None:
        self.permissions.check_moderate(actor, guild_id)
        member = await self.accounts.find(target.discord_id)
        if member is None or await self.repo.block(guild_id, member.id) is None:
            raise InvalidInput("moderation.not_blocked")
        moderator = await self._account(actor)
        if not await self.repo.clear_block(
            guild_id, member.id, actor_id=moderator.id, reason=reason.strip()[:MAX_REASON_CHARS]
        ):
            raise InvalidInput("moderation.not_blocked")

    async def blocked(self, actor: Actor, guild_id: int) -> list[tuple[MemberBlock, int | None]]:
        """Members blocked here now, with their Discord ids."""
        self.permissions.check_moderate(actor, guild_id)
        now = self.clock()
        blocks = [b for b in await self.repo.blocks(guild_id) if b.until is None or b.until > now]
        users = await self.accounts.by_ids(b.user_id for b in blocks)
        return [(b, users[b.user_id].discord_id if b.user_id in users else None) for b in blocks]

    # Audit -------------------------------------------------------------------------------

    async def audit(self, actor: Actor, guild_id: int, *, limit: int = 15) -> list[AuditLine]:
        """The server's latest moderation actions with who did them to whom."""
        self.permissions.check_moderate(actor, guild_id)
        actions = await self.repo.actions(guild_id, limit=limit)
        ids = {i for a in actions for i in (a.actor_id, a.target_user_id) if i}
        users = await self.accounts.by_ids(ids)

        def discord_id(user_id: str | None) -> int | None:
            user = users.get(user_id) if user_id else None
            return user.discord_id if user else None

        return [AuditLine(a, discord_id(a.actor_id), discord_id(a.target_user_id)) for a in actions]

    # The moderation log ------------------------------------------------------------------

    async def image_created(self, image: Image) -> None:
        """A new generated or uploaded image: post it in its server's log channel, if any.
        Never raises (a log that can't be posted to must not break a member's image)."""
        if image.guild_id is None:
            return
        try:
            settings = await self.settings.effective(image.guild_id)
            if settings.mod_log_channel_id is None:
                return
            owner = await self.accounts.get(image.user_id)
            cost = await self.usage.cost_of(image.id) if image.is_generated else None
            await self.events.publish(
                LogEntry(
                    image, settings.mod_log_channel_id,
                    owner.discord_id if owner else None, cost,
                )
            )  # fmt: skip
        except Exception:
            log.exception("could not post image %s to the moderation log", image.id)

    async def record_post(self, image_id: str, channel_id: int, message_id: int, kind: str) -> None:
        """Remember a message showing an image, to remove it if the image is deleted."""
        try:
            await self.repo.add_post(image_id, channel_id, message_id, kind)
        except Exception:
            log.exception("could not record where image %s was posted", image_id)

    async def delete_image(
        self, actor: Actor, context: ImageContext, *, from_log: bool = False
    ) -> Deleted:
        """Delete an image everywhere: its row and objects, the further images of the same
        answer, and (for the adapter to remove) the messages that show it. From the log,
        moderators only; elsewhere its owner too. A deletion by anyone but the owner is
        recorded in the audit."""
        image = context.image
        if from_log:
            self.permissions.check_moderator_delete(actor, image)
        image_ids = [image.id]
        extras = await self.repo.extras_of(image.id)
        await self.gallery.delete(actor, context)
        for extra_id in extras:
            extra = await self.images.get(extra_id)
            if extra is not None:
                try:
                    await self.gallery.delete(actor, ImageContext(extra, context.owner_discord_id))
                    image_ids.append(extra_id)
                except (ImageNotFound, NotAllowed):
                    continue
        if not actor.owns(image):
            user = await self._account(actor)
            await self.repo.record(
                guild_id=image.guild_id, actor_id=user.id, action="image_delete",
                target_user_id=image.user_id, image_id=image.id,
                detail={"prompt": (image.prompt or image.title or "")[:200],
                        "type": image.type.value, "images": len(image_ids)},
            )  # fmt: skip
        return Deleted(image, image_ids, await self.repo.posts(image_ids))


def normalised_or_empty(entry: str) -> str:
    """A word's normal form (what the list stores), or "" if it has none."""
    try:
        return check_word(entry)
    except InvalidInput:
        return ""
