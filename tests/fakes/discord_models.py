"""Data model of the fake Discord server: world objects, messages and interaction records.

Everything here is plain data plus small helpers for asserts; the server that serves it lives in
``tests.fakes.discord_server``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import json
import mimetypes
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import discord

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ALL_PERMISSIONS = discord.Permissions.all().value
ADMINISTRATOR = discord.Permissions(administrator=True).value
VIEW_CHANNEL = discord.Permissions(view_channel=True).value
DEFAULT_EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
    use_external_emojis=True,
    create_instant_invite=True,
    change_nickname=True,
).value
DEFAULT_BOT_PERMISSIONS = ALL_PERMISSIONS & ~ADMINISTRATOR

# Interaction types (payload "type") and callback types.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
# Application command types (the `type` of a command and of its interaction's data).
CHAT_INPUT_COMMAND, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
CB_PONG, CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE = 1, 4, 5, 6, 7
CB_AUTOCOMPLETE, CB_MODAL = 8, 9

_SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
#: Channel types of threads: announcement, public, private (channel.md, "Channel Types").
THREAD_TYPES = frozenset({10, 11, 12})
CREATE_PUBLIC_THREADS = discord.Permissions(create_public_threads=True).value
SEND_MESSAGES_IN_THREADS = discord.Permissions(send_messages_in_threads=True).value
#: The privileged Message Content intent (gateway.md, "List of Intents": 1 << 15).
MESSAGE_CONTENT_INTENT = 1 << 15


class Snowflakes:
    """Unique, increasing, snowflake-shaped ids (timestamp in the high bits)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(self._last + 1, now)
        return self._last


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat()


def sniff(data: bytes, filename: str | None = None) -> tuple[str, str]:
    """Return (filename, content_type) guessed from magic bytes, then from the file name."""
    magic = (
        (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
        (b"\xff\xd8\xff", "jpg", "image/jpeg"),
        (b"GIF87a", "gif", "image/gif"),
        (b"GIF89a", "gif", "image/gif"),
    )
    ext, ctype = "bin", "application/octet-stream"
    for prefix, e, c in magic:
        if data.startswith(prefix):
            ext, ctype = e, c
            break
    else:
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            ext, ctype = "webp", "image/webp"
    if filename is None:
        return f"file.{ext}", ctype
    guessed = mimetypes.guess_type(filename)[0]
    if ctype == "application/octet-stream" and guessed:
        ctype = guessed
    return filename, ctype


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Depth-first walk over message/modal components (rows, labels, sections, containers)."""
    for comp in components:
        yield comp
        children = comp.get("components")
        if isinstance(children, list):
            yield from walk_components(children)
        for key in ("component", "accessory"):
            child = comp.get(key)
            if isinstance(child, dict):
                yield from walk_components([child])


# --------------------------------------------------------------------------- world


@dataclass(eq=False)
class FakeUser:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    discriminator: str = "0"
    avatar: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": self.discriminator,
            "global_name": self.global_name,
            "avatar": self.avatar,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass(eq=False)
class FakeRole:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeChannel:
    id: int
    name: str
    type: int = 0  # 0 guild text, 1 DM
    guild_id: int | None = None
    position: int = 0
    recipient: FakeUser | None = None  # DMs only
    nsfw: bool = False
    # Discord's overwrites: {"id", "type" (0 role, 1 member), "allow", "deny"} (ints here).
    permission_overwrites: list[dict[str, int]] = field(default_factory=list)
    # Threads (types 10, 11, 12): the channel they are in, who started them, when.
    parent_id: int | None = None
    owner_id: int | None = None
    auto_archive_duration: int = 1440
    created_at: float = field(default_factory=time.time)

    @property
    def is_dm(self) -> bool:
        return self.type == 1

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def to_json(self) -> dict[str, Any]:
        if self.type == 1:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": 1,
                "recipients": [self.recipient.to_json()],
                "last_message_id": None,
                "flags": 0,
            }
        if self.is_thread:
            # Discord's thread channel object (channel.md, "Thread" example and
            # "Thread Metadata Object").
            return {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild_id),
                "parent_id": str(self.parent_id),
                "owner_id": str(self.owner_id),
                "name": self.name,
                "last_message_id": None,
                "message_count": 0,
                "member_count": 1,
                "total_message_sent": 0,
                "rate_limit_per_user": 0,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": iso(self.created_at),
                    "locked": False,
                    "create_timestamp": iso(self.created_at),
                },
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [
                {
                    "id": str(o["id"]),
                    "type": o["type"],
                    "allow": str(o["allow"]),
                    "deny": str(o["deny"]),
                }
                for o in self.permission_overwrites
            ],
            "nsfw": self.nsfw,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: float = field(default_factory=time.time)

    def to_json(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.to_json()
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass(eq=False)
class FakeGuild:
    id: int
    name: str
    owner_id: int
    locale: str = "en-US"
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    @property
    def text_channels(self) -> list[FakeChannel]:
        return [c for c in self.channels.values() if c.type == 0]

    @property
    def default_channel(self) -> FakeChannel:
        channels = self.text_channels
        if not channels:
            raise LookupError(f"guild {self.name!r} has no text channel")
        return channels[0]

    def channel(self, name: str) -> FakeChannel:
        for ch in self.channels.values():
            if ch.name == name:
                return ch
        raise LookupError(f"no channel {name!r} in guild {self.name!r}")

    def role(self, name: str) -> FakeRole:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise LookupError(f"no role {name!r} in guild {self.name!r}")

    def member(self, user: FakeUser | int) -> FakeMember | None:
        return self.members.get(user if isinstance(user, int) else user.id)

    def permissions_for(self, user_id: int) -> int:
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.everyone.permissions
        member = self.members.get(user_id)
        if member is not None:
            for role_id in member.roles:
                role = self.roles.get(role_id)
                if role is not None:
                    perms |= role.permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def permissions_in(self, user_id: int, channel: FakeChannel | None) -> int:
        """Discord's computation: the guild's base permissions, then the channel's overwrites
        (@everyone, the member's roles together, the member), ADMINISTRATOR and the owner
        overriding everything; no VIEW_CHANNEL means no permission at all in the channel."""
        base = self.permissions_for(user_id)
        if channel is not None and channel.is_thread and channel.parent_id in self.channels:
            # A thread has no overwrites of its own: its parent's apply.
            channel = self.channels[channel.parent_id]
        if channel is None or (
            base == ALL_PERMISSIONS and (user_id == self.owner_id or base & ADMINISTRATOR)
        ):
            return base
        overwrites = {(o["type"], o["id"]): o for o in channel.permission_overwrites}
        perms = base
        everyone = overwrites.get((0, self.id))
        if everyone is not None:
            perms = (perms & ~everyone["deny"]) | everyone["allow"]
        member = self.members.get(user_id)
        allow = deny = 0
        for role_id in member.roles if member else []:
            role = overwrites.get((0, role_id))
            if role is not None:
                allow |= role["allow"]
                deny |= role["deny"]
        perms = (perms & ~deny) | allow
        own = overwrites.get((1, user_id))
        if own is not None:
            perms = (perms & ~own["deny"]) | own["allow"]
        if not perms & VIEW_CHANNEL:
            return 0
        return perms

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "roles": [r.to_json() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [c.to_json() for c in self.channels.values()],
            "threads": [],
            "members": [m.to_json() for m in self.members.values()],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "member_count": len(self.members),
            "large": False,
            "unavailable": False,
            "lazy": True,
            "joined_at": iso(self.created_at),
            "preferred_locale": self.locale,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_flags": 0,
            "afk_timeout": 300,
            "afk_channel_id": None,
            "system_channel_id": None,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "application_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "nsfw": False,
        }


# --------------------------------------------------------------------------- messages


@dataclass(eq=False)
class FakeFile:
    """A file: uploaded by the bot (message attachment) or by a test (option of type ATTACHMENT).

    ``size`` defaults to ``len(data)`` but a test may claim another size; ``content_type`` is
    whatever the test says (it may lie), or sniffed from the bytes / file name. Of the files
    the bot uploads the fake keeps ``size`` and ``sha256`` only, unless the test asked for
    the bytes (``FakeDiscord(keep_upload_bytes=True)``): then ``kept`` is true.
    """

    filename: str
    data: bytes
    content_type: str | None = None
    id: int = 0
    size: int = -1
    description: str | None = None
    width: int | None = None
    height: int | None = None
    url: str = ""
    sha256: str = ""
    kept: bool = True

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.data)
        if not self.sha256 and self.kept:
            self.sha256 = hashlib.sha256(self.data).hexdigest()

    @classmethod
    def received(
        cls, filename: str, raw: bytes, content_type: str | None, *, keep: bool
    ) -> FakeFile:
        """A file the bot sent: its digest and size, and its bytes only if ``keep``."""
        return cls(
            filename=filename,
            data=raw if keep else b"",
            content_type=content_type,
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            kept=keep,
        )

    def read(self) -> bytes:
        """The bytes; only for files whose bytes the fake kept."""
        if not self.kept:
            raise LookupError(
                f"the fake kept only the digest and size of {self.filename!r}; to read uploaded "
                "bytes build FakeDiscord(keep_upload_bytes=True) or set "
                "fake.keep_upload_bytes = True before the bot uploads"
            )
        return self.data

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
        }
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass(eq=False)
class FakeMessage:
    """A message as the fake stored it; mutated in place by edits (see ``snapshot``)."""

    id: int
    channel_id: int
    author: FakeUser
    guild_id: int | None = None
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeFile] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    created_at: float = field(default_factory=time.time)
    edited_at: float | None = None
    deleted: bool = False
    webhook_id: int | None = None
    interaction: InteractionRecord | None = None  # the interaction this message answers
    message_reference: dict[str, Any] | None = None
    # Users the message mentions (a reply that pings its author mentions them too).
    mentions: list[FakeUser] = field(default_factory=list)
    # The message it replies to (sent along as `referenced_message`).
    referenced: FakeMessage | None = None
    reactions: list[str] = field(default_factory=list)
    last_payload: dict[str, Any] = field(default_factory=dict)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.attachments]

    @property
    def files(self) -> dict[str, bytes]:
        """Attachment bytes by file name (needs ``keep_upload_bytes``; see ``FakeFile``)."""
        return {f.filename: f.read() for f in self.attachments}

    def walk(self) -> Iterator[dict[str, Any]]:
        return walk_components(self.components)

    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in self.walk() if c.get("type") == 2]

    def selects(self) -> list[dict[str, Any]]:
        return [c for c in self.walk() if c.get("type") in _SELECT_TYPES]

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.walk() if "custom_id" in c]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        for comp in self.walk():
            if comp.get("custom_id") == custom_id:
                return comp
        return None

    def button(self, label: str | None = None, *, custom_id: str | None = None) -> dict[str, Any]:
        for b in self.buttons():
            if (label is None or b.get("label") == label) and (
                custom_id is None or b.get("custom_id") == custom_id
            ):
                return b
        raise LookupError(f"no button label={label!r} custom_id={custom_id!r} in {self.buttons()}")

    def embed_text(self) -> str:
        """Titles, descriptions, field names/values and footers of all embeds, newline-joined."""
        parts: list[str] = []
        for e in self.embeds:
            parts += [e.get("title") or "", e.get("description") or ""]
            for f in e.get("fields") or []:
                parts += [f.get("name") or "", f.get("value") or ""]
            parts.append((e.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)

    @property
    def text(self) -> str:
        """Content plus embed text: handy for ``"x" in msg.text`` asserts."""
        return "\n".join(p for p in (self.content, self.embed_text()) if p)

    def snapshot(self) -> FakeMessage:
        clone = copy.copy(self)
        clone.embeds = copy.deepcopy(self.embeds)
        clone.components = copy.deepcopy(self.components)
        clone.attachments = list(self.attachments)
        clone.reactions = list(self.reactions)
        return clone

    def to_json(self, application_id: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.to_json(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": None if self.edited_at is None else iso(self.edited_at),
            "tts": self.tts,
            "mention_everyone": False,
            "mentions": [u.to_json() for u in self.mentions],
            "mention_roles": [],
            "attachments": [a.to_json() for a in self.attachments],
            "embeds": self.embeds,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
            "components": self.components,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if application_id is not None and self.interaction is not None:
            data["application_id"] = str(application_id)
        if self.interaction is not None:
            rec = self.interaction
            data["interaction_metadata"] = {
                "id": str(rec.id),
                "type": rec.type,
                "user": rec.user.to_json(),
                "authorizing_integration_owners": rec.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
        if self.type == 19:
            ref = self.referenced
            # Discord: null when the message it replies to was deleted.
            alive = ref is not None and not ref.deleted
            data["referenced_message"] = (
                ref.to_json(application_id) if ref is not None and alive else None
            )
        return data

    def __repr__(self) -> str:
        flags = f" flags={self.flags}" if self.flags else ""
        return (
            f"<FakeMessage id={self.id} channel={self.channel_id}{flags} content={self.content!r}"
            f" embeds={len(self.embeds)} files={[a.filename for a in self.attachments]}"
            f" custom_ids={self.custom_ids()}{' deleted' if self.deleted else ''}>"
        )


# --------------------------------------------------------------------------- interactions


class Notifier:
    """Wake-up-on-change primitive: ``wait_for(check)`` returns once ``check()`` is truthy."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(
        self, check: Callable[[], Any], timeout: float, describe: Callable[[], str] | None = None
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                detail = f": {describe()}" if describe is not None else ""
                raise TimeoutError(f"condition not met within {timeout}s{detail}")
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                async with asyncio.timeout(remaining):
                    await fut
            except TimeoutError:
                continue


@dataclass
class FakeCallback:
    """One ``POST /interactions/{id}/{token}/callback`` the bot made."""

    type: int
    data: dict[str, Any]
    files: list[FakeFile]
    at: float


@dataclass
class FakeModal:
    """A modal the bot opened (callback type 9)."""

    custom_id: str
    title: str
    components: list[dict[str, Any]]
    record: InteractionRecord

    def fields(self) -> dict[str, dict[str, Any]]:
        """Inputs by custom_id (text inputs, selects...), whether in rows or labels."""
        return {
            c["custom_id"]: c
            for c in walk_components(self.components)
            if "custom_id" in c and c.get("type") != 2
        }


@dataclass
class FakeHTTPError:
    method: str
    path: str
    status: int
    code: int
    message: str


@dataclass
class FakeInvalidRequest:
    """A request real Discord would refuse as malformed (the bot's bug, not bad luck):
    invalid against the spec, to a route Discord does not have, or over an upload limit."""

    method: str
    path: str
    status: int
    code: int
    problems: list[str]
    payload: Any = None

    def __str__(self) -> str:
        shown = json.dumps(self.payload, default=str)
        if len(shown) > 300:
            shown = shown[:300] + "..."
        return (
            f"{self.method} {self.path} -> {self.status} {self.code}: "
            f"{'; '.join(self.problems)} (body: {shown})"
        )


class InteractionRecord:
    """Everything the bot did in answer to one interaction we sent (keyed by its token)."""

    def __init__(
        self,
        *,
        id: int,
        token: str,
        type: int,
        payload: dict[str, Any],
        user: FakeUser,
        guild_id: int | None,
        channel_id: int,
        target_message: FakeMessage | None = None,
    ) -> None:
        self.id = id
        self.token = token
        self.type = type
        self.payload = payload
        self.user = user
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.target_message = target_message  # the message a component/modal came from
        self.callbacks: list[FakeCallback] = []
        self.original: FakeMessage | None = None
        self.followups: list[FakeMessage] = []
        self.edits: list[FakeMessage] = []  # snapshots after each edit (original or followup)
        self.deleted: list[FakeMessage] = []
        self.modal: FakeModal | None = None
        self.choices: list[dict[str, Any]] | None = None  # autocomplete answer
        self.errors: list[FakeHTTPError] = []  # 4xx answers given for this token
        self.expired = False
        self.sent_at: float | None = None  # fake.clock.now() when INTERACTION_CREATE went out
        self.first_callback_at: float | None = None
        self._notifier = Notifier()

    # -- state -----------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        data = self.payload.get("data") or {}
        return data.get("name") or data.get("custom_id")

    @property
    def callback(self) -> FakeCallback | None:
        return self.callbacks[0] if self.callbacks else None

    @property
    def callback_type(self) -> int | None:
        return self.callbacks[0].type if self.callbacks else None

    @property
    def responded(self) -> bool:
        return bool(self.callbacks)

    @property
    def ack_latency(self) -> float | None:
        if self.sent_at is None or self.first_callback_at is None:
            return None
        return self.first_callback_at - self.sent_at

    @property
    def messages(self) -> list[FakeMessage]:
        """Original (if any) then followups, without duplicates."""
        out: list[FakeMessage] = []
        seen: set[int] = set()
        for m in ([self.original] if self.original is not None else []) + self.followups:
            if m.id not in seen:
                seen.add(m.id)
                out.append(m)
        return out

    @property
    def last_message(self) -> FakeMessage | None:
        msgs = self.messages
        return msgs[-1] if msgs else None

    @property
    def ephemeral(self) -> bool:
        return self.original is not None and self.original.ephemeral

    def describe(self) -> str:
        return (
            f"interaction {self.name!r} type={self.type} callbacks="
            f"{[(c.type, c.data) for c in self.callbacks]} original={self.original!r} "
            f"followups={self.followups!r} modal={self.modal and self.modal.custom_id!r} "
            f"errors={self.errors!r} expired={self.expired}"
        )

    def __repr__(self) -> str:
        return f"<InteractionRecord {self.describe()}>"

    def _changed(self) -> None:
        self._notifier.notify()

    # -- waiting ---------------------------------------------------------------------------
    async def wait_for(self, predicate: Callable[[Self], Any], timeout: float = 5.0) -> Self:
        """Wait until ``predicate(record)`` is truthy; returns the record."""
        await self._notifier.wait_for(lambda: predicate(self), timeout, self.describe)
        return self

    async def wait_callback(self, timeout: float = 5.0) -> FakeCallback:
        await self.wait_for(lambda r: r.callbacks, timeout)
        return self.callbacks[0]

    async def wait_original(
        self, predicate: Callable[[FakeMessage], Any] | None = None, timeout: float = 5.0
    ) -> FakeMessage:
        """Wait for an original response (not loading) matching ``predicate``."""

        def ok(r: InteractionRecord) -> bool:
            m = r.original
            return m is not None and not m.loading and (predicate is None or bool(predicate(m)))

        await self.wait_for(ok, timeout)
        assert self.original is not None
        return self.original

    async def wait_followup(self, count: int = 1, timeout: float = 5.0) -> FakeMessage:
        """Wait until at least ``count`` followups exist; returns the ``count``-th."""
        await self.wait_for(lambda r: len(r.followups) >= count, timeout)
        return self.followups[count - 1]

    async def wait_modal(self, timeout: float = 5.0) -> FakeModal:
        await self.wait_for(lambda r: r.modal is not None, timeout)
        assert self.modal is not None
        return self.modal

    async def wait_message(
        self, predicate: Callable[[FakeMessage], Any], timeout: float = 5.0
    ) -> FakeMessage:
        """Wait for any message of this interaction (original or followup) matching."""

        def find(r: InteractionRecord) -> FakeMessage | None:
            for m in r.messages:
                if not m.loading and predicate(m):
                    return m
            return None

        await self.wait_for(lambda r: find(r) is not None, timeout)
        found = find(self)
        assert found is not None
        return found
