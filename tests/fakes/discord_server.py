"""A fake Discord (REST + gateway WebSocket on one aiohttp server) that real discord.py logs in to.

Tests build a small world (guilds, channels, roles, users), start the fake, run the real bot
against it with :func:`running_bot`, then send real interactions (slash commands, buttons,
selects, modal submits) and assert on what the bot sent back::

    async with FakeDiscord() as fake:
        guild = fake.add_guild("Test Guild")
        alice = fake.add_user("alice", guilds=[guild])
        async with running_bot(fake, MyBot(...)):
            rec = await fake.slash("imagine", {"prompt": "a cat", "image": fake.upload(png)},
                                   user=alice)
            msg = await rec.wait_followup()
            assert msg.filenames == ["out.png"] and msg.attachments[0].size < 10_000_000
            click = await fake.click(msg, "nb:again:1", user=alice)
            await click.wait_callback()

It is as strict as Discord, on by default (see ``FakeDiscord.__init__``): every REST request
is checked against Discord's OpenAPI spec (``tests.fakes.discord_validation``), interactions
expire after 3 s unanswered and tokens after 15 min on ``fake.clock``, rate limits apply
(``tests.fakes.discord_ratelimits``), uploads over the limit get 413, and uploads are kept as
digests unless a test asks for the bytes. Requests Discord would refuse are collected in
``fake.invalid_requests``, and the test suite fails the test that made them.

See ``tests/test_fake_discord.py`` and ``tests/test_fake_discord_strict.py`` for every path
exercised end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.fakes.discord_models import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    CB_AUTOCOMPLETE,
    CB_DEFERRED_MESSAGE,
    CB_DEFERRED_UPDATE,
    CB_MESSAGE,
    CB_MODAL,
    CB_PONG,
    CB_UPDATE,
    CREATE_PUBLIC_THREADS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    EPHEMERAL,
    LOADING,
    MESSAGE_COMMAND,
    MESSAGE_COMPONENT,
    MESSAGE_CONTENT_INTENT,
    MODAL_SUBMIT,
    SEND_MESSAGES_IN_THREADS,
    FakeCallback,
    FakeChannel,
    FakeFile,
    FakeGuild,
    FakeHTTPError,
    FakeInvalidRequest,
    FakeMember,
    FakeMessage,
    FakeModal,
    FakeRole,
    FakeUser,
    InteractionRecord,
    Notifier,
    Snowflakes,
    sniff,
)
from tests.fakes.discord_oauth import OAuthRoutes, OAuthState
from tests.fakes.discord_ratelimits import FakeClock, RateLimiter
from tests.fakes.discord_validation import DiscordSpec, Refusal, load_spec, unknown_route

__all__ = [
    "FakeCallback",
    "FakeChannel",
    "FakeDiscord",
    "FakeFile",
    "FakeGuild",
    "FakeHTTPError",
    "FakeInvalidRequest",
    "FakeMember",
    "FakeMessage",
    "FakeModal",
    "FakeRole",
    "FakeUser",
    "InteractionRecord",
    "running_bot",
]

log = logging.getLogger("tests.fakes.discord")

API = "/api/v10"
MiB = 1024 * 1024
ACK_DEADLINE = 3.0  # Discord: the first response within 3 s, or "Unknown interaction"
TOKEN_LIFETIME = 15 * 60.0  # Discord: interaction tokens work for 15 minutes
_INVALID_JSON = "The request body contains invalid JSON."
SEND_MESSAGES = discord.Permissions(send_messages=True).value
ATTACH_FILES = discord.Permissions(attach_files=True).value
EMBED_LINKS = discord.Permissions(embed_links=True).value
VIEW_CHANNEL = discord.Permissions(view_channel=True).value
MANAGE_MESSAGES = discord.Permissions(manage_messages=True).value
_SELECTS = (3, 5, 6, 7, 8)
_ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_MODAL, 10, 12},
    MESSAGE_COMPONENT: {
        CB_MESSAGE,
        CB_DEFERRED_MESSAGE,
        CB_DEFERRED_UPDATE,
        CB_UPDATE,
        CB_MODAL,
        10,
    },
    AUTOCOMPLETE: {CB_AUTOCOMPLETE},
    MODAL_SUBMIT: {CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_DEFERRED_UPDATE, CB_UPDATE, 10},
    1: {CB_PONG},
}

UserLike = FakeUser | FakeMember | int
# The user an OAuth2 bearer token speaks for, on its request.
OAUTH_USER = web.RequestKey("oauth_user", FakeUser)
# When a request reached the fake's edge (fake.clock.now()), before it is parsed and checked:
# what "Discord received it" means for the 3 s deadline and the acknowledgement latency.
ARRIVED = web.RequestKey("arrived", float)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py only decodes JSON when Content-Type is exactly "application/json".
    return web.Response(
        status=status, body=_dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


def _no_content() -> web.Response:
    return web.Response(status=204)


class _ArrivalStamps(asyncio.Protocol):
    """aiohttp's protocol for one connection, plus when a request's first bytes were read.

    The edge's clock for "Discord received it": stamped as the bytes are read, not when the
    handler gets its turn, so the fake's own work on earlier requests (checking them against
    the spec, ~0.35 ms each) is not counted as the bot's lateness. One request at a time per
    connection (HTTP/1.1 without pipelining, as aiohttp and discord.py send)."""

    def __init__(self, inner: asyncio.Protocol, clock: FakeClock) -> None:
        self.inner, self.clock = inner, clock
        self.arrived: float | None = None

    def take(self) -> float | None:
        """The pending request's arrival (and forget it)."""
        stamp, self.arrived = self.arrived, None
        return stamp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.arrived is None:
            self.arrived = self.clock.now()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Reject(Exception):
    """Raised inside handlers to answer with a Discord-style JSON error."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        rec: InteractionRecord | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.rec = status, code, message, rec
        self.errors = errors


@dataclass
class _Body:
    """A request body, read once by the middleware: JSON, or multipart ``payload_json`` plus
    ``files[n]`` parts (kept as digests unless the test asked for bytes)."""

    media: str | None
    payload: Any
    uploads: list[tuple[int, FakeFile]]
    present: bool

    @property
    def fields(self) -> dict[str, Any]:
        return self.payload if isinstance(self.payload, dict) else {}


@dataclass
class _Injection:
    method: str
    path: str  # substring of the request path
    status: int
    code: int
    message: str
    remaining: int
    headers: dict[str, str] = field(default_factory=dict)


class _Conn:
    """One gateway WebSocket connection; all sends go through its lock."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.session: _Session | None = None

    async def send(self, frame: str) -> bool:
        async with self.lock:
            if self.ws.closed:
                return False
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return False
            return True


@dataclass(eq=False)
class _Session:
    id: str
    intents: int
    seq: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=4096))
    conn: _Conn | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeDiscord:
    """Fake Discord API + gateway. See the module docstring for a usage example."""

    def __init__(
        self,
        *,
        bot_name: str = "NanoBanana",
        bot_id: int | None = None,
        application_id: int | None = None,
        token: str | None = None,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        heartbeat_interval_ms: int = 41250,
        attachment_size_limit: int = 10 * MiB,
        ack_deadline: float | None = ACK_DEADLINE,
        token_lifetime: float | None = TOKEN_LIFETIME,
        validate: bool = True,
        rate_limits: bool = True,
        keep_upload_bytes: bool = False,
        clock: FakeClock | None = None,
        dispatch_message_create: bool = False,
        connect_timeout: float = 10.0,
        install: bool = True,
    ) -> None:
        """Every rule of Discord's that the fake knows is on by default:

        validate: check every REST request against Discord's OpenAPI spec (and the message
            rules a schema cannot say): 400 50035 Invalid Form Body, like Discord.
        ack_deadline: an interaction not acknowledged within that many seconds (on
            ``clock``) is expired: callback -> 404 10062 Unknown interaction.
        token_lifetime: webhook calls (followups, edits) with an older token -> 401 50027
            Invalid Webhook Token.
        rate_limits: per-route buckets and the global limit (see ``discord_ratelimits``);
            tune them with ``fake.ratelimits``.
        attachment_size_limit: the guild's upload limit (also sent in every interaction);
            a bigger file -> 413 40005 Request entity too large.
        keep_upload_bytes: keep the bytes of the files the bot uploads (default: digest and
            size only); may also be set on the instance before the bot uploads.
        clock: the time the deadlines and rate limits use; ``fake.clock.advance(s)`` skips
            ahead instead of sleeping.
        token: if set, REST calls and IDENTIFY must use it (401 / close 4004 otherwise).
        dispatch_message_create: echo MESSAGE_CREATE over the gateway for channel messages.
        install: point discord.py (Route.BASE, DEFAULT_GATEWAY) at this fake on start().

        Requests that Discord would refuse as malformed are collected in
        ``invalid_requests``; the test suite fails any test that leaves one behind (a test
        that provokes one on purpose takes it with ``take_invalid()``).
        """
        self.ids = Snowflakes()
        self.bot_user = FakeUser(id=bot_id or self.ids.next(), username=bot_name, bot=True)
        self.application_id = application_id or self.bot_user.id
        self.owner = FakeUser(id=self.ids.next(), username="app-owner")
        self.token = token
        self.bot_permissions = bot_permissions
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.attachment_size_limit = attachment_size_limit
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.validate = validate
        self.keep_upload_bytes = keep_upload_bytes
        self.clock = clock or FakeClock()
        self.ratelimits = RateLimiter(self.clock, enabled=rate_limits)
        self.spec: DiscordSpec = load_spec()  # read and indexed once per process
        self.dispatch_message_create = dispatch_message_create
        self.connect_timeout = connect_timeout
        self._install_on_start = install
        # OAuth2 (tests.fakes.discord_oauth): sign-in with Discord for web apps.
        self._oauth = OAuthRoutes(self)

        # world
        self.users: dict[int, FakeUser] = {
            self.bot_user.id: self.bot_user,
            self.owner.id: self.owner,
        }
        self.guilds: dict[int, FakeGuild] = {}
        self.left_guilds: dict[int, FakeGuild] = {}  # guilds the bot left (DELETE @me/guilds)
        self.channels: dict[int, FakeChannel] = {}
        self._dms: dict[int, FakeChannel] = {}
        self._no_dms: set[int] = set()

        # what the bot did
        self.messages: dict[int, FakeMessage] = {}
        self.files: dict[int, FakeFile] = {}
        self._channel_messages: dict[int, list[FakeMessage]] = {}
        self.channel_log: list[FakeMessage] = []  # every message created on a channel route
        self.global_commands: dict[tuple[int, str], dict[str, Any]] = {}
        self.guild_commands: dict[int, dict[tuple[int, str], dict[str, Any]]] = {}
        self.sync_calls: list[tuple[int | None, list[dict[str, Any]]]] = []
        self.records: list[InteractionRecord] = []
        self.records_by_id: dict[int, InteractionRecord] = {}
        self.records_by_token: dict[str, InteractionRecord] = {}
        self.modals: dict[str, FakeModal] = {}  # latest modal opened per custom_id
        self.http_errors: list[FakeHTTPError] = []  # every 4xx the fake answered
        self.invalid_requests: list[FakeInvalidRequest] = []  # what Discord would refuse
        self.unknown_routes: list[tuple[str, str]] = []
        self.server_errors: list[str] = []  # exceptions inside the fake itself (bugs)
        self.request_count = 0
        # Files the bot downloaded from the CDN: (file id, time.monotonic() when served).
        self.downloads: list[tuple[int, float]] = []
        self._injections: list[_Injection] = []
        self._bodies: dict[int, _Body] = {}  # by id(request), while its handler runs

        # gateway
        self.identifies: list[dict[str, Any]] = []
        self.resumes = 0
        self.heartbeats = 0
        self.gateway_connects = 0
        self._conns: set[_Conn] = set()
        self._sessions: dict[str, _Session] = {}
        self._session: _Session | None = None
        # Sharded bots (IDENTIFY with shard [id, count > 1], maybe from several processes):
        # the current session of each shard; guild events go to their guild's shard.
        self.shard_count = 0
        self._shards: dict[int, _Session] = {}
        self._pending_events: list[tuple[str, Any]] = []

        self._notifier = Notifier()  # any change at all
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._saved: tuple[str, yarl.URL] | None = None
        self.base_url = ""
        self.gateway_url = ""
        FakeDiscord.instances.append(self)

    @property
    def oauth(self) -> OAuthState:
        """The OAuth2 side: `oauth.user` is who is signed in to Discord in the browser,
        `oauth.client_secret` the application's secret, `oauth.deny` cancels sign-ins."""
        return self._oauth.state

    def register_redirect(self, uri: str) -> None:
        """Register an OAuth2 redirect URL, as in the Developer Portal."""
        self._oauth.state.redirect_uris.append(uri)

    # Every FakeDiscord built in this process, for the test suite's per-test check.
    instances: ClassVar[list[FakeDiscord]] = []

    # ================================================================== lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=256 * 1024 * 1024)
        self._add_routes(app.router)
        app.on_shutdown.append(self._on_shutdown)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        clock = self.clock
        self._listener = await asyncio.get_running_loop().create_server(
            lambda: _ArrivalStamps(server(), clock), "127.0.0.1", 0, backlog=1024
        )
        port = self._listener.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.gateway_url = f"ws://127.0.0.1:{port}/ws"
        if self._install_on_start:
            self.install()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.uninstall()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def install(self) -> None:
        """Point discord.py's REST base and default gateway at this fake (undone by stop())."""
        if not self.base_url:
            raise RuntimeError("start() the fake before install()")
        if self._saved is None:
            self._saved = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            )
        discord.http.Route.BASE = f"{self.base_url}{API}"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def uninstall(self) -> None:
        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self._saved = None

    async def _on_shutdown(self, app: web.Application) -> None:
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"fake discord stopping")

    def _spawn(self, coro: Awaitable[T]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _changed(self, rec: InteractionRecord | None = None) -> None:
        if rec is not None:
            rec._changed()
        self._notifier.notify()

    # ================================================================== world building

    def add_user(
        self,
        username: str,
        *,
        bot: bool = False,
        id: int | None = None,
        global_name: str | None = None,
        guilds: Iterable[FakeGuild] = (),
        accepts_dms: bool = True,
    ) -> FakeUser:
        """A user; ``guilds`` makes them a plain member there. ``accepts_dms=False`` makes
        messages to their DM channel fail with 403 50007 like on Discord."""
        user = FakeUser(
            id=id or self.ids.next(), username=username, bot=bot, global_name=global_name
        )
        if not accepts_dms:
            self._no_dms.add(user.id)
        self.users[user.id] = user
        for guild in guilds:
            self.add_member(guild, user)
        return user

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        id: int | None = None,
        owner: FakeUser | None = None,
        channels: Sequence[str] = ("general",),
        locale: str = "en-US",
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int | None = None,
    ) -> FakeGuild:
        """A guild with @everyone, a managed bot role, text ``channels``, owner and bot members."""
        gid = id or self.ids.next()
        owner = owner or self.owner
        self.users.setdefault(owner.id, owner)
        guild = FakeGuild(id=gid, name=name, owner_id=owner.id, locale=locale)
        guild.roles[gid] = FakeRole(
            id=gid, guild_id=gid, name="@everyone", permissions=everyone_permissions
        )
        bot_role = FakeRole(
            id=self.ids.next(),
            guild_id=gid,
            name=self.bot_user.username,
            permissions=self.bot_permissions if bot_permissions is None else bot_permissions,
            position=1,
            managed=True,
        )
        guild.roles[bot_role.id] = bot_role
        for position, channel_name in enumerate(channels):
            ch = FakeChannel(id=self.ids.next(), name=channel_name, guild_id=gid, position=position)
            guild.channels[ch.id] = ch
            self.channels[ch.id] = ch
        guild.members[owner.id] = FakeMember(user=owner, guild_id=gid)
        guild.members[self.bot_user.id] = FakeMember(
            user=self.bot_user, guild_id=gid, roles=[bot_role.id]
        )
        self.guilds[gid] = guild
        # Added while a bot is connected: the bot joined it. A join's GUILD_CREATE has no
        # `unavailable` (backfills after READY carry `false`): clients tell joins apart by it.
        joined = {k: v for k, v in guild.to_json().items() if k != "unavailable"}
        self._queue_event("GUILD_CREATE", joined)
        return guild

    @property
    def guild(self) -> FakeGuild:
        """The first guild added (the default context for interactions)."""
        if not self.guilds:
            raise LookupError("no guild: call fake.add_guild() first")
        return next(iter(self.guilds.values()))

    def bot_role(self, guild: FakeGuild) -> FakeRole:
        member = guild.members[self.bot_user.id]
        return guild.roles[member.roles[0]]

    def set_bot_permissions(self, guild: FakeGuild, permissions: int) -> None:
        """Set the bot's managed role permissions (@everyone's still apply on top)."""
        self.set_role_permissions(guild, self.bot_role(guild), permissions)

    def set_role_permissions(self, guild: FakeGuild, role: FakeRole, permissions: int) -> None:
        role.permissions = permissions
        self._queue_event("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role.to_json()})

    def add_role(
        self, guild: FakeGuild, name: str, permissions: int = 0, *, id: int | None = None
    ) -> FakeRole:
        role = FakeRole(
            id=id or self.ids.next(),
            guild_id=guild.id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
        )
        guild.roles[role.id] = role
        self._queue_event("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.to_json()})
        return role

    def add_channel(
        self,
        guild: FakeGuild,
        name: str,
        *,
        type: int = 0,
        id: int | None = None,
        nsfw: bool = False,
    ) -> FakeChannel:
        """A channel; `nsfw` makes it age-restricted."""
        ch = FakeChannel(
            id=id or self.ids.next(),
            name=name,
            type=type,
            guild_id=guild.id,
            position=len(guild.channels),
            nsfw=nsfw,
        )
        guild.channels[ch.id] = ch
        self.channels[ch.id] = ch
        self._queue_event("CHANNEL_CREATE", ch.to_json())
        return ch

    def set_channel_overwrite(
        self,
        channel: FakeChannel,
        target: FakeRole | FakeUser,
        *,
        allow: int = 0,
        deny: int = 0,
    ) -> None:
        """Allow or deny permissions in one channel for a role or a member (Discord's
        permission overwrites); the bot learns it from CHANNEL_UPDATE."""
        kind = 0 if isinstance(target, FakeRole) else 1
        channel.permission_overwrites = [
            o for o in channel.permission_overwrites if (o["type"], o["id"]) != (kind, target.id)
        ]
        channel.permission_overwrites.append(
            {"id": target.id, "type": kind, "allow": allow, "deny": deny}
        )
        self._queue_event("CHANNEL_UPDATE", channel.to_json())

    def add_member(
        self,
        guild: FakeGuild,
        user: FakeUser,
        *,
        roles: Iterable[FakeRole] = (),
        nick: str | None = None,
        permissions: int | None = None,
    ) -> FakeMember:
        """Make ``user`` a member. ``permissions`` adds a personal role granting exactly that."""
        self.users.setdefault(user.id, user)
        role_ids = [r.id for r in roles]
        if permissions is not None:
            role_ids.append(self.add_role(guild, f"perms-{user.username}", permissions).id)
        member = guild.members.get(user.id)
        if member is None:
            member = FakeMember(user=user, guild_id=guild.id, roles=role_ids, nick=nick)
            guild.members[user.id] = member
            self._queue_event("GUILD_MEMBER_ADD", {"guild_id": str(guild.id), **member.to_json()})
        else:
            member.roles.extend(r for r in role_ids if r not in member.roles)
            member.nick = nick if nick is not None else member.nick
            self._queue_event(
                "GUILD_MEMBER_UPDATE", {"guild_id": str(guild.id), **member.to_json()}
            )
        return member

    def dm_channel(self, user: UserLike) -> FakeChannel:
        u = self._user(user)
        ch = self._dms.get(u.id)
        if ch is None:
            ch = FakeChannel(id=self.ids.next(), name=f"dm-{u.username}", type=1, recipient=u)
            self._dms[u.id] = ch
            self.channels[ch.id] = ch
        return ch

    def upload(
        self,
        data: bytes,
        filename: str | None = None,
        content_type: str | None = None,
        *,
        size: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> FakeFile:
        """A file a user attaches to an interaction, served by the fake at ``file.url``.

        ``content_type`` and ``size`` default to what the bytes say; pass them to lie."""
        name, sniffed = sniff(data, filename)
        f = FakeFile(
            filename=name,
            data=data,
            content_type=content_type if content_type is not None else sniffed,
            size=len(data) if size is None else size,
            width=width,
            height=height,
        )
        return self._register_file(f)

    def _register_file(self, f: FakeFile) -> FakeFile:
        f.id = self.ids.next()
        f.url = f"{self.base_url}/attachments/{f.id}/{quote(f.filename)}"
        self.files[f.id] = f
        return f

    def _user(self, user: UserLike) -> FakeUser:
        if isinstance(user, FakeMember):
            return user.user
        if isinstance(user, FakeUser):
            return user
        try:
            return self.users[user]
        except KeyError:
            raise LookupError(f"unknown user id {user}") from None

    # ================================================================== queries for asserts

    def channel_messages(self, channel: FakeChannel | int) -> list[FakeMessage]:
        """Messages created through ``POST /channels/{id}/messages`` (not interaction replies)."""
        cid = channel.id if isinstance(channel, FakeChannel) else channel
        return list(self._channel_messages.get(cid, ()))

    def dm_messages(self, user: UserLike) -> list[FakeMessage]:
        ch = self._dms.get(self._user(user).id)
        return [] if ch is None else self.channel_messages(ch)

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], Any] = lambda m: True,
        *,
        channel: FakeChannel | int | None = None,
        timeout: float = 5.0,
    ) -> FakeMessage:
        """Wait for a channel (or DM) message, existing or future, matching ``predicate``."""
        cid = channel.id if isinstance(channel, FakeChannel) else channel

        def find() -> FakeMessage | None:
            source = self.channel_log if cid is None else self._channel_messages.get(cid, [])
            for m in source:
                if not m.deleted and predicate(m):
                    return m
            return None

        def describe() -> str:
            return f"channel messages: {self.channel_log[-10:]!r}"

        found: FakeMessage = await self._notifier.wait_for(find, timeout, describe)
        return found

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` (re-checked on every change the fake sees) is truthy."""
        return await self._notifier.wait_for(predicate, timeout)

    def commands(self, guild: FakeGuild | int | None = None) -> dict[str, dict[str, Any]]:
        """Synced chat-input commands by name: global, or for ``guild``."""
        store = self._command_store(self._gid(guild))
        return {name: cmd for (ctype, name), cmd in store.items() if ctype == 1}

    def command(
        self, name: str, guild: FakeGuild | int | None = None, type: int = 1
    ) -> dict[str, Any]:
        try:
            return self._command_store(self._gid(guild))[(type, name)]
        except KeyError:
            raise LookupError(f"command {name!r} not synced (guild={self._gid(guild)})") from None

    def expire(self, rec: InteractionRecord) -> None:
        """Expire an interaction token: its webhook calls now get 401 Invalid Webhook Token."""
        rec.expired = True
        self._changed(rec)

    def inject_error(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        code: int = 0,
        message: str = "injected error",
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The next ``times`` requests whose path contains ``path`` fail with this JSON error."""
        self._injections.append(
            _Injection(method.upper(), path, status, code, message, times, dict(headers or {}))
        )

    # ================================================================== gateway

    @property
    def connected(self) -> bool:
        s = self._session
        return s is not None and s.conn is not None and not s.conn.ws.closed

    def shard_of(self, guild_id: int | None) -> int:
        """The shard that receives a guild's events (DMs: shard 0), as Discord computes it."""
        if not guild_id or self.shard_count <= 1:
            return 0
        return (int(guild_id) >> 22) % self.shard_count

    def shards_connected(self, shard_ids: Sequence[int]) -> bool:
        """Whether every one of `shard_ids` has a connected session."""
        return all(
            (s := self._shards.get(shard)) is not None and s.conn is not None
            and not s.conn.ws.closed
            for shard in shard_ids
        )  # fmt: skip

    def _session_for(self, guild_id: int | None) -> _Session | None:
        if self.shard_count > 1:
            return self._shards.get(self.shard_of(guild_id))
        return self._session

    async def _wait_session(self, guild_id: int | None = None) -> _Session:
        found = self._session_for(guild_id)
        if found is not None:
            return found
        try:
            session: _Session = await self._notifier.wait_for(
                lambda: self._session_for(guild_id), self.connect_timeout
            )
        except TimeoutError:
            raise RuntimeError(
                "no bot identified on the fake gateway (is the bot running?)"
            ) from None
        return session

    def _queue_event(self, event: str, data: Any) -> None:
        """World changes made while a bot is connected are sent in order, before the next
        dispatch (or soon, from a background task)."""
        if self._session is None:
            return  # included in READY / GUILD_CREATE at identify time
        if self.shard_count > 1:
            self._spawn(self.dispatch(event, data))  # to the guild's shard
            return
        self._pending_events.append((event, data))
        self._spawn(self._flush_pending())

    async def _flush_pending(self) -> None:
        session = await self._wait_session()
        async with session.lock:
            await self._send_pending_locked(session)

    async def _send_pending_locked(self, session: _Session) -> None:
        pending, self._pending_events = self._pending_events, []
        for event, data in pending:
            await self._send_dispatch_locked(session, event, data)

    async def _send_dispatch_locked(self, session: _Session, event: str, data: Any) -> None:
        session.seq += 1
        frame = _dumps({"op": 0, "t": event, "s": session.seq, "d": data})
        session.buffer.append((session.seq, frame))
        if session.conn is not None:
            await session.conn.send(frame)

    async def dispatch(
        self, event: str, data: Any, *, before_send: Callable[[], None] | None = None
    ) -> None:
        """Send a DISPATCH (op 0) event to the connected bot (to the shard of the event's
        guild, when the bot is sharded)."""
        session = await self._wait_session(_event_guild(event, data))
        async with session.lock:
            if self._pending_events:
                await self._send_pending_locked(session)
            if before_send is not None:
                before_send()
            await self._send_dispatch_locked(session, event, data)

    async def reconnect_bot(self, *, resume: bool = True) -> None:
        """Ask the bot to reconnect: op 7 RECONNECT (it resumes) or op 9 INVALID_SESSION."""
        session = await self._wait_session()
        if session.conn is None:
            raise RuntimeError("bot is not connected")
        frame = {"op": 7, "d": None} if resume else {"op": 9, "d": False}
        await session.conn.send(_dumps({**frame, "s": None, "t": None}))

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the bot's gateway socket (4000: it reconnects and RESUMEs; events dispatched
        meanwhile are buffered and replayed)."""
        session = await self._wait_session()
        if session.conn is not None:
            conn, session.conn = session.conn, None
            await conn.ws.close(code=code, message=b"fake discord dropped the connection")

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        conn = _Conn(ws)
        self._conns.add(conn)
        self.gateway_connects += 1
        hello = {
            "op": 10,
            "d": {"heartbeat_interval": self.heartbeat_interval_ms},
            "s": None,
            "t": None,
        }
        await conn.send(_dumps(hello))
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    try:
                        payload = json.loads(msg.data)
                    except ValueError:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                        break
                    await self._on_gateway(conn, payload)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"binary frames not supported by the fake")
                    break
        finally:
            self._conns.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            self._changed()
        return ws

    async def _on_gateway(self, conn: _Conn, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        d = payload.get("d")
        if op == 1:
            self.heartbeats += 1
            await conn.send('{"op":11,"d":null,"s":null,"t":null}')
        elif op == 2:
            await self._identify(conn, d or {})
        elif op == 6:
            await self._resume(conn, d or {})
        elif op == 8:
            await self._request_members(conn, d or {})
        elif op in (3, 4):
            pass  # presence / voice state: accepted, ignored
        else:
            log.warning("fake discord: unknown gateway op %s: %r", op, payload)

    def _ready_payload(self, session: _Session, shard: list[int] | None) -> dict[str, Any]:
        user = {
            **self.bot_user.to_json(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
        }
        data: dict[str, Any] = {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self._shard_guilds(shard)],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "_trace": ["fake-discord"],
        }
        if shard is not None:
            data["shard"] = shard
        return data

    def _shard_guilds(self, shard: list[int] | None) -> list[FakeGuild]:
        guilds = list(self.guilds.values())
        if shard is None or shard[1] <= 1:
            return guilds
        return [g for g in guilds if (g.id >> 22) % shard[1] == shard[0]]

    async def _identify(self, conn: _Conn, d: dict[str, Any]) -> None:
        if self.token is not None and d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        self.identifies.append(d)
        session = _Session(id=secrets.token_hex(16), intents=int(d.get("intents") or 0))
        session.conn = conn
        conn.session = session
        self._sessions[session.id] = session
        shard = d.get("shard")
        if isinstance(shard, list) and len(shard) == 2 and int(shard[1]) > 1:
            self.shard_count = int(shard[1])
            self._shards[int(shard[0])] = session
        async with session.lock:
            self._pending_events.clear()  # the bot gets the full current world now
            await self._send_dispatch_locked(session, "READY", self._ready_payload(session, shard))
            for guild in self._shard_guilds(shard):
                await self._send_dispatch_locked(session, "GUILD_CREATE", guild.to_json())
            self._session = session
        self._changed()

    async def _resume(self, conn: _Conn, d: dict[str, Any]) -> None:
        session = self._sessions.get(str(d.get("session_id")))
        seq = int(d.get("seq") or 0)
        ok = (
            session is not None
            and (session is self._session or session in self._shards.values())
            and (self.token is None or d.get("token") == self.token)
            and (not session.buffer or session.buffer[0][0] <= seq + 1)
        )
        if not ok or session is None:
            await conn.send('{"op":9,"d":false,"s":null,"t":null}')
            return
        async with session.lock:
            session.conn = conn
            conn.session = session
            for s, frame in list(session.buffer):
                if s > seq:
                    await conn.send(frame)
            await self._send_dispatch_locked(session, "RESUMED", {"_trace": ["fake-discord"]})
        self.resumes += 1
        self._changed()

    async def _request_members(self, conn: _Conn, d: dict[str, Any]) -> None:
        gid = d.get("guild_id", 0)
        gids: list[Any] = gid if isinstance(gid, list) else [gid]
        session = conn.session
        if session is None:
            return
        for one in gids:
            guild = self.guilds.get(int(one))
            if guild is None:
                continue
            members = list(guild.members.values())
            if d.get("user_ids"):
                wanted = {int(u) for u in d["user_ids"]}
                members = [m for m in members if m.user.id in wanted]
            elif d.get("query"):
                members = [m for m in members if m.user.username.startswith(d["query"])]
            if d.get("limit"):
                members = members[: int(d["limit"])]
            chunk = {
                "guild_id": str(guild.id),
                "members": [m.to_json() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
                "nonce": d.get("nonce"),
            }
            async with session.lock:
                await self._send_dispatch_locked(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ================================================================== sending interactions

    def _context(
        self,
        user: UserLike,
        guild: FakeGuild | None,
        channel: FakeChannel | int | None,
        dm: bool,
    ) -> tuple[FakeUser, FakeGuild | None, FakeChannel]:
        u = self._user(user)
        if channel is not None:
            ch = channel if isinstance(channel, FakeChannel) else self.channels[channel]
            g = self.guilds[ch.guild_id] if ch.guild_id is not None else None
        elif dm:
            ch, g = self.dm_channel(u), None
        else:
            g = guild or self.guild
            ch = g.default_channel
        if g is not None and u.id not in g.members:
            self.add_member(g, u)  # only members can use guild commands: join on first use
        return u, g, ch

    def _interaction_payload(
        self,
        itype: int,
        user: FakeUser,
        guild: FakeGuild | None,
        channel: FakeChannel,
        locale: str,
        data: dict[str, Any],
        message: FakeMessage | None = None,
    ) -> dict[str, Any]:
        iid = self.ids.next()
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": f"itok.{iid}.{secrets.token_urlsafe(24)}",
            "version": 1,
            "data": data,
            "channel_id": str(channel.id),
            "channel": channel.to_json(),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is not None:
            member = guild.members[user.id]
            payload.update(
                guild_id=str(guild.id),
                guild_locale=guild.locale,
                guild={"id": str(guild.id), "locale": guild.locale, "features": []},
                member=member.to_json(permissions=guild.permissions_in(user.id, channel)),
                app_permissions=str(guild.permissions_in(self.bot_user.id, channel)),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            payload.update(
                user=user.to_json(),
                app_permissions=str(self.bot_permissions),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        if message is not None:
            payload["message"] = message.to_json(self.application_id)
        return payload

    async def _send_interaction(
        self,
        payload: dict[str, Any],
        user: FakeUser,
        guild: FakeGuild | None,
        channel: FakeChannel,
        target: FakeMessage | None,
        age: float = 0.0,
    ) -> InteractionRecord:
        """``age``: how old the interaction already is when it reaches the bot (gateway lag
        on Discord); it counts toward the 3 s and 15 min deadlines."""
        rec = InteractionRecord(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            payload=payload,
            user=user,
            guild_id=guild.id if guild is not None else None,
            channel_id=channel.id,
            target_message=target,
        )
        # Registered before sending: the bot may answer before dispatch() returns.
        self.records.append(rec)
        self.records_by_id[rec.id] = rec
        self.records_by_token[rec.token] = rec

        def mark_sent() -> None:
            rec.sent_at = self.clock.now() - age

        await self.dispatch("INTERACTION_CREATE", payload, before_send=mark_sent)
        return rec

    def _find_command(
        self, name: str, guild: FakeGuild | None, ctype: int = 1
    ) -> tuple[dict[str, Any] | None, int | None]:
        if guild is not None:
            cmd = self.guild_commands.get(guild.id, {}).get((ctype, name))
            if cmd is not None:
                return cmd, guild.id
        return self.global_commands.get((ctype, name)), None

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        user: UserLike,
        guild: FakeGuild | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
        locale: str = "en-US",
        subcommand: str | None = None,
        attachments: Mapping[str, FakeFile | bytes] | None = None,
        validate: bool = True,
        age: float = 0.0,
    ) -> InteractionRecord:
        """Run ``/name`` (``"group sub"``, or ``subcommand="sub"``) as ``user``.

        Context: ``channel`` if given, else a DM if ``dm``, else ``guild`` (default: the first
        guild) and its first text channel. Option types come from the synced command; values:
        str/int/float/bool, FakeUser/FakeMember (user), FakeRole, FakeChannel, and for
        attachments ``bytes`` or ``fake.upload(...)`` (also accepted as ``attachments=``).
        With ``validate``, unknown or missing required options raise before anything is sent;
        without it any payload goes out, as a forged or stale client could send it. ``age``
        makes the interaction arrive that many seconds old (see ``_send_interaction``).
        """
        if subcommand:
            name = f"{name} {subcommand}"
        if attachments:
            if options is None:
                options = {}
            if not isinstance(options, Mapping):
                raise TypeError("attachments= needs options given as a mapping")
            options = {**options, **attachments}
        return await self._app_command(
            APPLICATION_COMMAND, name, options, user, guild, channel, dm, locale, validate, None,
            age=age,
        )  # fmt: skip

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        user: UserLike,
        guild: FakeGuild | None = None,
        channel: FakeChannel | int | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Autocomplete request for option ``focused``; the answer lands in ``rec.choices``."""
        return await self._app_command(
            AUTOCOMPLETE, name, options, user, guild, channel, dm, locale, False, focused
        )

    async def message_command(
        self,
        name: str,
        message: FakeMessage | int,
        *,
        user: UserLike,
        locale: str = "en-US",
        validate: bool = True,
        age: float = 0.0,
    ) -> InteractionRecord:
        """Run the message command ``name`` (right-click a message, Apps) on ``message`` as
        ``user``, as Discord sends it: an APPLICATION_COMMAND whose data has ``type`` 3
        (MESSAGE), ``target_id`` and the message itself in ``resolved.messages`` (with its
        content, attachments and embeds: an app reads them there without the message content
        intent). With ``validate``, the command must be synced and the message not deleted.
        ``age``: seconds the interaction spent on its way (Discord's 3 s count from sending)."""
        msg = self._message(message)
        ch = self.channels[msg.channel_id]
        u, g, _ = self._context(user, None, ch, False)
        cmd, cmd_guild_id = self._find_command(name, g, MESSAGE_COMMAND)
        if validate:
            if cmd is None:
                known = sorted(n for (t, n) in self.global_commands if t == MESSAGE_COMMAND)
                known += sorted(
                    n for (t, n) in self.guild_commands.get(g.id if g else 0, {})
                    if t == MESSAGE_COMMAND
                )  # fmt: skip
                raise LookupError(f"no message command {name!r} synced here; synced: {known}")
            if msg.deleted:
                raise ValueError(f"message {msg.id} was deleted")
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd is not None else str(self.ids.next()),
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": str(msg.id),
            "resolved": {"messages": {str(msg.id): msg.to_json(self.application_id)}},
        }
        if cmd_guild_id is not None:
            data["guild_id"] = str(cmd_guild_id)
        payload = self._interaction_payload(APPLICATION_COMMAND, u, g, ch, locale, data)
        return await self._send_interaction(payload, u, g, ch, None, age)

    async def _app_command(
        self,
        itype: int,
        name: str,
        options: Mapping[str, Any] | Sequence[Any] | None,
        user: UserLike,
        guild: FakeGuild | None,
        channel: FakeChannel | int | None,
        dm: bool,
        locale: str,
        validate: bool,
        focused: str | None,
        *,
        age: float = 0.0,
    ) -> InteractionRecord:
        u, g, ch = self._context(user, guild, channel, dm)
        parts = name.split()
        cmd, cmd_guild_id = self._find_command(parts[0], g)
        synced_any = bool(self.global_commands) or any(self.guild_commands.values())
        if cmd is None and validate and synced_any:
            known = sorted({n for (_, n) in self.global_commands} | set(self._guild_names(g)))
            raise LookupError(f"/{parts[0]} is not a synced command here; synced: {known}")
        defs: list[dict[str, Any]] | None = None if cmd is None else cmd.get("options") or []
        chain: list[tuple[str, int]] = []
        for i, sub in enumerate(parts[1:], start=1):
            sub_def = None
            if defs is not None:
                sub_def = next(
                    (o for o in defs if o.get("name") == sub and o.get("type") in (1, 2)), None
                )
                if sub_def is None and validate:
                    raise LookupError(f"/{' '.join(parts[:i])} has no subcommand {sub!r}")
            stype = int(sub_def["type"]) if sub_def else (1 if i == len(parts) - 1 else 2)
            chain.append((sub, stype))
            defs = None if sub_def is None else sub_def.get("options") or []
        resolved: dict[str, dict[str, Any]] = {}
        opts = self._build_options(name, defs, options, g, resolved, validate)
        if focused is not None:
            for opt in opts:
                if opt["name"] == focused:
                    opt["focused"] = True
                    opt["value"] = str(opt.get("value", ""))
        for sub, stype in reversed(chain):
            opts = [{"name": sub, "type": stype, "options": opts}]
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd is not None else str(self.ids.next()),
            "name": parts[0],
            "type": 1,
            "options": opts,
        }
        if resolved:
            data["resolved"] = resolved
        if cmd_guild_id is not None:
            data["guild_id"] = str(cmd_guild_id)
        payload = self._interaction_payload(itype, u, g, ch, locale, data)
        return await self._send_interaction(payload, u, g, ch, None, age)

    def _guild_names(self, guild: FakeGuild | None) -> list[str]:
        if guild is None:
            return []
        return [n for (_, n) in self.guild_commands.get(guild.id, {})]

    def _build_options(
        self,
        command: str,
        defs: list[dict[str, Any]] | None,
        options: Mapping[str, Any] | Sequence[Any] | None,
        guild: FakeGuild | None,
        resolved: dict[str, dict[str, Any]],
        validate: bool,
    ) -> list[dict[str, Any]]:
        if options is None:
            items: list[tuple[str, Any]] = []
        elif isinstance(options, Mapping):
            items = list(options.items())
        else:
            items = [(o["name"], o) if isinstance(o, dict) else (o[0], o[1]) for o in options]
        by_name = None if defs is None else {d["name"]: d for d in defs}
        out: list[dict[str, Any]] = []
        for opt_name, value in items:
            if isinstance(value, dict) and "type" in value and "name" in value:
                out.append(value)  # raw option payload: sent as is
                continue
            if by_name is not None and opt_name in by_name:
                otype = int(by_name[opt_name]["type"])
            elif by_name is not None and validate:
                raise ValueError(
                    f"/{command} has no option {opt_name!r}; options: {sorted(by_name)}"
                )
            else:
                otype = self._infer_type(value)
            out.append(
                {
                    "name": opt_name,
                    "type": otype,
                    "value": self._option_value(otype, value, guild, resolved),
                }
            )
        if validate and defs is not None:
            given = {name for name, _ in items}
            missing = [d["name"] for d in defs if d.get("required") and d["name"] not in given]
            if missing:
                raise ValueError(f"/{command}: missing required options {missing}")
        return out

    @staticmethod
    def _infer_type(value: Any) -> int:
        if isinstance(value, bool):
            return 5
        if isinstance(value, int):
            return 4
        if isinstance(value, float):
            return 10
        if isinstance(value, FakeUser | FakeMember):
            return 6
        if isinstance(value, FakeChannel):
            return 7
        if isinstance(value, FakeRole):
            return 8
        if isinstance(value, bytes | bytearray | FakeFile):
            return 11
        return 3

    def _option_value(
        self, otype: int, value: Any, guild: FakeGuild | None, resolved: dict[str, dict[str, Any]]
    ) -> Any:
        if otype == 3:
            return str(value)
        if otype == 4:
            return int(value)
        if otype == 5:
            return bool(value)
        if otype == 10:
            return float(value)
        if otype == 8 or (otype == 9 and isinstance(value, FakeRole)):
            role = (
                value if isinstance(value, FakeRole) else guild.roles[int(value)] if guild else None
            )
            if role is None:
                raise ValueError(f"unknown role {value!r}")
            resolved.setdefault("roles", {})[str(role.id)] = role.to_json()
            return str(role.id)
        if otype in (6, 9):
            user = self._user(value)
            resolved.setdefault("users", {})[str(user.id)] = user.to_json()
            member = guild.members.get(user.id) if guild is not None else None
            if guild is not None and member is not None:
                resolved.setdefault("members", {})[str(user.id)] = member.to_json(
                    with_user=False, permissions=guild.permissions_for(user.id)
                )
            return str(user.id)
        if otype == 7:
            ch = value if isinstance(value, FakeChannel) else self.channels[int(value)]
            perms = self.guilds[ch.guild_id].permissions_for(self.bot_user.id) if ch.guild_id else 0
            resolved.setdefault("channels", {})[str(ch.id)] = {
                **ch.to_json(),
                "permissions": str(perms),
            }
            return str(ch.id)
        if otype == 11:
            f = value if isinstance(value, FakeFile) else self.upload(bytes(value))
            if not f.id:
                self._register_file(f)
            f.url = f"{self.base_url}/attachments/{f.id}/{quote(f.filename)}"  # if made pre-start
            resolved.setdefault("attachments", {})[str(f.id)] = {**f.to_json(), "ephemeral": True}
            return str(f.id)
        return value

    def _message(self, message: FakeMessage | int) -> FakeMessage:
        if isinstance(message, FakeMessage):
            return message
        try:
            return self.messages[message]
        except KeyError:
            raise LookupError(f"unknown message id {message}") from None

    async def click(
        self,
        message: FakeMessage | int,
        custom_id: str | None = None,
        *,
        label: str | None = None,
        user: UserLike | None = None,
        locale: str = "en-US",
        validate: bool = True,
        age: float = 0.0,
    ) -> InteractionRecord:
        """Click a button (by ``custom_id`` or ``label``) on ``message``. ``user`` defaults to
        the user of the interaction the message answered."""
        msg = self._message(message)
        if custom_id is None:
            custom_id = msg.button(label)["custom_id"]
        assert custom_id is not None
        comp = msg.component(custom_id)
        if validate:
            if msg.deleted:
                raise ValueError(f"message {msg.id} was deleted")
            if comp is None or comp.get("type") != 2:
                raise LookupError(f"no button {custom_id!r} on {msg!r}")
            if comp.get("disabled"):
                raise ValueError(f"button {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if comp is not None and "id" in comp:
            data["id"] = comp["id"]
        return await self._component(msg, data, user, locale, age)

    async def select(
        self,
        message: FakeMessage | int,
        custom_id: str,
        values: Sequence[Any],
        *,
        user: UserLike | None = None,
        locale: str = "en-US",
        validate: bool = True,
    ) -> InteractionRecord:
        """Choose ``values`` in a select menu (string values, or users/roles/channels)."""
        msg = self._message(message)
        comp = msg.component(custom_id)
        ctype = int(comp["type"]) if comp is not None else 3
        if validate:
            if comp is None or ctype not in _SELECTS:
                raise LookupError(f"no select {custom_id!r} on {msg!r}")
            if comp.get("disabled"):
                raise ValueError(f"select {custom_id!r} is disabled")
            lo, hi = int(comp.get("min_values", 1)), int(comp.get("max_values", 1))
            if not lo <= len(values) <= hi:
                raise ValueError(f"select {custom_id!r} takes {lo}..{hi} values, got {len(values)}")
            if ctype == 3:
                allowed = {o["value"] for o in comp.get("options", [])}
                bad = [v for v in values if v not in allowed]
                if bad:
                    raise ValueError(f"{bad} not among options {sorted(allowed)}")
        channel = self.channels[msg.channel_id]
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        resolved: dict[str, dict[str, Any]] = {}
        vals: list[str] = []
        for v in values:
            if ctype == 3:
                vals.append(str(v))
            else:
                otype = {5: 6, 6: 8, 7: 7}.get(ctype, self._infer_type(v))
                vals.append(str(self._option_value(otype, v, guild, resolved)))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": ctype, "values": vals}
        if resolved:
            data["resolved"] = resolved
        return await self._component(msg, data, user, locale)

    async def _component(
        self,
        msg: FakeMessage,
        data: dict[str, Any],
        user: UserLike | None,
        locale: str,
        age: float = 0.0,
    ) -> InteractionRecord:
        if user is None:
            if msg.interaction is None:
                raise ValueError("pass user=: this message does not answer an interaction")
            user = msg.interaction.user
        ch = self.channels[msg.channel_id]
        u, g, _ = self._context(user, None, ch, False)
        payload = self._interaction_payload(MESSAGE_COMPONENT, u, g, ch, locale, data, message=msg)
        return await self._send_interaction(payload, u, g, ch, msg, age)

    async def submit_modal(
        self,
        modal: FakeModal | InteractionRecord | str,
        values: Mapping[str, Any],
        *,
        user: UserLike | None = None,
        message: FakeMessage | None = None,
        locale: str = "en-US",
        validate: bool = True,
    ) -> InteractionRecord:
        """Submit a modal the bot opened: by FakeModal, by the record that opened it, or by
        custom_id (latest one). ``values`` maps input custom_id -> text (or list for selects).
        Components mirror the modal's layout (action rows or labels). ``user`` defaults to
        whoever opened it; ``message`` to the message whose component opened it."""
        if isinstance(modal, InteractionRecord):
            if modal.modal is None:
                raise LookupError(f"the bot opened no modal for {modal!r}")
            m = modal.modal
        elif isinstance(modal, str):
            if modal not in self.modals:
                raise LookupError(f"no modal {modal!r} opened; opened: {sorted(self.modals)}")
            m = self.modals[modal]
        else:
            m = modal
        source = m.record
        fields = m.fields()
        if validate:
            unknown = set(values) - set(fields)
            if unknown:
                raise ValueError(
                    f"modal {m.custom_id!r} has no inputs {sorted(unknown)}; has {sorted(fields)}"
                )

        def answer(comp: dict[str, Any]) -> dict[str, Any]:
            ctype = comp.get("type")
            cid = comp.get("custom_id")
            out: dict[str, Any] = {"type": ctype}
            if "id" in comp:
                out["id"] = comp["id"]
            if ctype == 4:
                value = str(values.get(str(cid), comp.get("value") or ""))
                if validate:
                    if comp.get("required", True) and not value:
                        raise ValueError(f"text input {cid!r} is required")
                    lo, hi = comp.get("min_length"), comp.get("max_length")
                    if value and (
                        (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi)
                    ):
                        raise ValueError(f"text input {cid!r} must be {lo}..{hi} chars")
                out.update(custom_id=cid, value=value)
            elif ctype in _SELECTS:
                raw = values.get(str(cid), [])
                out.update(
                    custom_id=cid, values=[raw] if isinstance(raw, str) else [str(v) for v in raw]
                )
            return out

        components: list[dict[str, Any]] = []
        for top in m.components:
            if top.get("type") == 1:
                components.append(
                    {"type": 1, "components": [answer(c) for c in top.get("components", [])]}
                )
            elif top.get("type") == 18 and isinstance(top.get("component"), dict):
                label: dict[str, Any] = {"type": 18, "component": answer(top["component"])}
                if "id" in top:
                    label["id"] = top["id"]
                components.append(label)
            else:
                components.append(answer(top))
        u = self._user(user) if user is not None else source.user
        ch = self.channels[source.channel_id]
        _, g, _ = self._context(u, None, ch, False)
        target = message if message is not None else source.target_message
        data = {"custom_id": m.custom_id, "components": components}
        payload = self._interaction_payload(MODAL_SUBMIT, u, g, ch, locale, data, message=target)
        return await self._send_interaction(payload, u, g, ch, target)

    async def post_message(
        self,
        channel: FakeChannel | int,
        user: UserLike,
        content: str = "",
        *,
        files: Sequence[FakeFile] = (),
        embeds: Sequence[dict[str, Any]] = (),
        reply_to: FakeMessage | None = None,
        ping: bool = True,
        mentions: Sequence[UserLike] = (),
    ) -> FakeMessage:
        """A user posts a message in a channel (or a thread): stored and sent to the bot as
        MESSAGE_CREATE. ``embeds`` are the ones Discord unfurls from links in it (``type``
        "image", "link"..., with ``thumbnail``/``image`` holding ``url`` and ``proxy_url``).
        `reply_to` makes it a reply (type 19, `message_reference`, the message it answers as
        `referenced_message`); with `ping` (Discord's default) the replied-to author is
        mentioned. Users named as `<@id>` in `content` are mentioned, as Discord reads them;
        `mentions` adds others.

        As Discord does for a bot without the privileged Message Content intent, the
        content, attachments, embeds and components are sent empty unless the message is a
        DM, mentions the bot, or is the bot's own (docs.discord.com, "You might not need a
        privileged intent": the exceptions, read 2026-12-07)."""
        ch = channel if isinstance(channel, FakeChannel) else self.channels[channel]
        u = self._user(user)
        mentioned = [self._user(m) for m in mentions]
        # Discord reads the mentions from the content itself (`<@id>`, `<@!id>`).
        for match in re.finditer(r"<@!?(\d+)>", content):
            user_id = int(match[1])
            known = self.users.get(user_id)
            if known is not None and all(m.id != user_id for m in mentioned):
                mentioned.append(known)
        if reply_to is not None and ping and all(m.id != reply_to.author.id for m in mentioned):
            mentioned.append(reply_to.author)
        msg = FakeMessage(
            id=self.ids.next(),
            channel_id=ch.id,
            author=u,
            guild_id=ch.guild_id,
            content=content,
            attachments=[f if f.id else self._register_file(f) for f in files],
            embeds=[dict(e) for e in embeds],
            mentions=mentioned,
        )
        if reply_to is not None:
            msg.type = 19
            msg.referenced = reply_to
            msg.message_reference = {
                "type": 0,
                "message_id": str(reply_to.id),
                "channel_id": str(reply_to.channel_id),
                **({"guild_id": str(reply_to.guild_id)} if reply_to.guild_id else {}),
            }
        self._store_channel_message(msg)
        data = msg.to_json(self.application_id)
        session = self._session_for(ch.guild_id)
        intents = session.intents if session is not None else 0
        readable = (
            intents & MESSAGE_CONTENT_INTENT
            or ch.guild_id is None
            or any(m.id == self.bot_user.id for m in mentioned)
            or u.id == self.bot_user.id
        )
        if not readable:
            data.update(content="", attachments=[], embeds=[], components=[])
        if ch.guild_id is not None:
            guild = self.guilds[ch.guild_id]
            member = guild.members.get(u.id) or self.add_member(guild, u)
            data["member"] = member.to_json(with_user=False)
        await self.dispatch("MESSAGE_CREATE", data)
        return msg

    def thread_messages(self, thread: FakeChannel | int) -> list[FakeMessage]:
        """The messages posted in a thread (the bot's and members'), oldest first."""
        return self.channel_messages(thread)

    def threads(self, parent: FakeChannel | int | None = None) -> list[FakeChannel]:
        """The threads opened so far (in `parent` when given), oldest first."""
        pid = parent.id if isinstance(parent, FakeChannel) else parent
        return [
            c for c in self.channels.values() if c.is_thread and (pid is None or c.parent_id == pid)
        ]

    # ================================================================== REST plumbing

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        a = API
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("GET", "/users/@me", self._get_me),
            ("PATCH", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._create_dm),
            ("DELETE", "/users/@me/guilds/{gid}", self._leave_guild),
            ("GET", "/users/@me/guilds", self._my_guilds),
            ("GET", "/users/{uid}", self._get_user),
            ("GET", "/oauth2/applications/@me", self._get_app),
            ("GET", "/applications/@me", self._get_app),
            ("GET", "/applications/{app}/guilds/{gid}/commands/permissions", self._empty_list),
            ("GET", "/applications/{app}/commands", self._list_commands),
            ("PUT", "/applications/{app}/commands", self._bulk_commands),
            ("POST", "/applications/{app}/commands", self._upsert_command),
            ("GET", "/applications/{app}/commands/{cid}", self._get_command),
            ("PATCH", "/applications/{app}/commands/{cid}", self._edit_command),
            ("DELETE", "/applications/{app}/commands/{cid}", self._delete_command),
            ("GET", "/applications/{app}/guilds/{gid}/commands", self._list_commands),
            ("PUT", "/applications/{app}/guilds/{gid}/commands", self._bulk_commands),
            ("POST", "/applications/{app}/guilds/{gid}/commands", self._upsert_command),
            ("GET", "/applications/{app}/guilds/{gid}/commands/{cid}", self._get_command),
            ("PATCH", "/applications/{app}/guilds/{gid}/commands/{cid}", self._edit_command),
            ("DELETE", "/applications/{app}/guilds/{gid}/commands/{cid}", self._delete_command),
            ("POST", "/interactions/{iid}/{token}/callback", self._callback),
            ("GET", "/webhooks/{app}/{token}/messages/@original", self._get_original),
            ("PATCH", "/webhooks/{app}/{token}/messages/@original", self._edit_original),
            ("DELETE", "/webhooks/{app}/{token}/messages/@original", self._delete_original),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("GET", "/webhooks/{app}/{token}/messages/{mid}", self._get_webhook_message),
            ("PATCH", "/webhooks/{app}/{token}/messages/{mid}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{mid}", self._delete_webhook_message),
            ("GET", "/channels/{cid}", self._get_channel),
            ("GET", "/channels/{cid}/messages", self._list_channel_messages),
            ("POST", "/channels/{cid}/messages", self._create_channel_message),
            ("POST", "/channels/{cid}/typing", self._no_content_handler),
            ("POST", "/channels/{cid}/threads", self._start_thread),
            ("POST", "/channels/{cid}/messages/{mid}/threads", self._start_thread_from_message),
            ("GET", "/channels/{cid}/messages/{mid}", self._get_channel_message),
            ("PATCH", "/channels/{cid}/messages/{mid}", self._edit_channel_message),
            ("DELETE", "/channels/{cid}/messages/{mid}", self._delete_channel_message),
            ("PUT", "/channels/{cid}/messages/{mid}/reactions/{emoji}/@me", self._add_reaction),
            (
                "DELETE",
                "/channels/{cid}/messages/{mid}/reactions/{emoji}/@me",
                self._remove_reaction,
            ),
            ("GET", "/guilds/{gid}", self._get_guild),
            ("GET", "/guilds/{gid}/channels", self._get_guild_channels),
            ("GET", "/guilds/{gid}/roles", self._get_guild_roles),
            ("GET", "/guilds/{gid}/members", self._list_members),
            ("GET", "/guilds/{gid}/members/{uid}", self._get_member),
        ]
        router.add_get("/ws", self._gateway)
        router.add_get("/attachments/{fid}/{filename}", self._get_file)
        router.add_get("/oauth2/authorize", self._oauth.authorize)
        router.add_post(f"{a}/oauth2/token", self._oauth.token)
        for method, path, handler in routes:
            router.add_route(method, a + path, handler)
        router.add_route("*", "/{tail:.*}", self._not_found)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Discord's edge, in its order: injected faults, auth, the body (read once), rate
        limits, upload limits, the spec; then the route's handler."""
        stamps = request.transport.get_protocol() if request.transport is not None else None
        arrived = stamps.take() if isinstance(stamps, _ArrivalStamps) else None
        request[ARRIVED] = arrived if arrived is not None else self.clock.now()
        try:
            return await self._edge(request, handler)
        finally:
            if isinstance(stamps, _ArrivalStamps):
                stamps.take()  # this request's later body chunks don't date the next one

    async def _edge(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.request_count += 1
        path = request.path
        for inj in self._injections:
            if inj.remaining > 0 and inj.method in (request.method, "*") and inj.path in path:
                inj.remaining -= 1
                await request.read()
                injected = self._reject(request, _Reject(inj.status, inj.code, inj.message))
                injected.headers.update(inj.headers)
                return injected
        if not path.startswith(f"{API}/"):
            return await self._handle(request, handler)  # the gateway, the CDN
        api_path = path[len(API) :]
        if api_path == "/oauth2/token":
            # Not in Discord's OpenAPI spec: checked by its handler as the docs say.
            return await self._handle(request, handler)
        authorization = request.headers.get("Authorization", "")
        bearer = authorization.startswith("Bearer ")
        bot_auth = not bearer and not api_path.startswith(("/webhooks/", "/interactions/"))
        if bot_auth and self.token is not None and authorization != f"Bot {self.token}":
            return self._reject(request, _Reject(401, 0, "401: Unauthorized"))
        try:
            body = await self._parse_body(request)
        except _Reject as rej:
            return self._reject(request, rej)
        # Routing by the spec's templates (also what the rate limits key on).
        op, params, exists = self.spec.find(request.method, api_path)
        if bearer:
            # An OAuth2 token: only where the spec's `security` lets one of its scopes in.
            user = self._oauth.bearer_user(authorization, op.oauth_scopes if op else None)
            if user is None:
                return self._reject(request, _Reject(401, 0, "401: Unauthorized"))
            request[OAUTH_USER] = user
        template = op.template if op is not None else api_path
        refusal: Refusal | None = None
        if self.validate:
            refusal = (
                unknown_route(exists)
                if op is None
                else self.spec.check_operation(
                    op, params, request.query, body.media, body.payload, body.present
                )
            )
        verdict = self.ratelimits.check(request.method, api_path, template, params, bot_auth)
        rec = self._record_for(params)
        resp: web.StreamResponse
        if verdict.limited is not None:
            err = FakeHTTPError(request.method, path, 429, 0, "You are being rate limited.")
            self.http_errors.append(err)
            resp = _json(verdict.limited, 429)
        elif too_big := self._oversized(body, rec):
            limit = self._upload_limit(rec)
            problems = [f"{f.filename} is {f.size} bytes; the limit is {limit}" for f in too_big]
            resp = self._refuse_invalid(
                request, _Reject(413, 40005, "Request entity too large", rec), problems, body
            )
        elif refusal is not None:
            refused = _Reject(refusal.status, refusal.code, refusal.message, rec, refusal.errors)
            resp = self._refuse_invalid(request, refused, refusal.flat(), body)
        else:
            self._bodies[id(request)] = body
            try:
                resp = await self._handle(request, handler)
            finally:
                del self._bodies[id(request)]
        resp.headers.update(verdict.headers)
        return resp

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Reject as rej:
            return self._reject(request, rej)
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("fake discord: error handling %s %s", request.method, request.path)
            self.server_errors.append(f"{request.method} {request.path}: {exc!r}")
            # 400, not 500: discord.py retries 5xx with multi-second sleeps.
            return _json({"message": f"fake discord internal error: {exc!r}", "code": 0}, 400)

    def _record_for(self, params: Mapping[str, str]) -> InteractionRecord | None:
        """The interaction a webhook or callback route belongs to (by its token)."""
        token = params.get("webhook_token") or params.get("interaction_token")
        return self.records_by_token.get(token) if token else None

    def _upload_limit(self, rec: InteractionRecord | None) -> int:
        if rec is not None:
            return int(rec.payload.get("attachment_size_limit", self.attachment_size_limit))
        return self.attachment_size_limit

    def _oversized(self, body: _Body, rec: InteractionRecord | None) -> list[FakeFile]:
        limit = self._upload_limit(rec)
        return [f for _, f in body.uploads if f.size > limit]

    def _refuse_invalid(
        self, request: web.Request, rej: _Reject, problems: list[str], body: _Body
    ) -> web.Response:
        """Answer like Discord and remember it: the test fails unless it expected it."""
        self.invalid_requests.append(
            FakeInvalidRequest(
                request.method, request.path, rej.status, rej.code, problems, body.payload
            )
        )
        log.warning(
            "fake discord: refused %s %s: %s", request.method, request.path, "; ".join(problems)
        )
        return self._reject(request, rej)

    def _reject(self, request: web.Request, rej: _Reject) -> web.Response:
        err = FakeHTTPError(request.method, request.path, rej.status, rej.code, rej.message)
        self.http_errors.append(err)
        if rej.rec is not None:
            rej.rec.errors.append(err)
            self._changed(rej.rec)
        else:
            self._changed()
        return _json(Refusal(rej.status, rej.code, rej.message, rej.errors).body(), rej.status)

    def take_invalid(self) -> list[FakeInvalidRequest]:
        """The invalid requests so far, forgotten: for tests that provoke them on purpose."""
        taken, self.invalid_requests = self.invalid_requests, []
        return taken

    def problems(self) -> list[str]:
        """What makes a test fail: requests Discord would refuse as malformed, routes the fake
        does not serve, and errors inside the fake itself."""
        return (
            [f"invalid request: {r}" for r in self.invalid_requests]
            + [f"route not served by the fake: {m} {p}" for m, p in self.unknown_routes]
            + [f"fake discord internal error: {e}" for e in self.server_errors]
        )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        log.warning("fake discord: no route for %s %s", request.method, request.path)
        self.unknown_routes.append((request.method, request.path))
        raise _Reject(404, 0, "404: Not Found")

    async def _parse_body(self, request: web.Request) -> _Body:
        """JSON or multipart (``payload_json`` + ``files[n]``) -> _Body. Invalid JSON is
        refused as Discord does (400 50109)."""
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            uploads: list[tuple[int, FakeFile]] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, aiohttp.BodyPartReader):
                    continue
                name = part.name or ""
                if name == "payload_json":
                    try:
                        payload.update(json.loads(await part.text()))
                    except ValueError:
                        raise _Reject(400, 50109, _INVALID_JSON) from None
                elif name.startswith("files["):
                    index = int(name[6:-1])
                    raw = bytes(await part.read(decode=False))
                    filename, ctype = sniff(raw, part.filename or f"file{index}")
                    keep = self.keep_upload_bytes
                    uploads.append((index, FakeFile.received(filename, raw, ctype, keep=keep)))
                else:
                    payload[name] = await part.text()
            return _Body("multipart/form-data", payload, uploads, True)
        raw_body = await request.read()
        if not raw_body:
            return _Body(None, None, [], False)
        try:
            data = json.loads(raw_body)
        except ValueError:
            raise _Reject(400, 50109, _INVALID_JSON) from None
        return _Body("application/json", data, [], True)

    def _body(self, request: web.Request) -> tuple[dict[str, Any], list[tuple[int, FakeFile]]]:
        """The request's body as (fields, [(n, file)]), read by the middleware."""
        body = self._bodies.get(id(request))
        if body is None:
            return {}, []
        return body.fields, body.uploads

    def _attachments(
        self,
        current: list[FakeFile],
        payload: dict[str, Any],
        uploads: list[tuple[int, FakeFile]],
    ) -> list[FakeFile]:
        by_index = dict(uploads)
        used: set[int] = set()
        existing = {f.id: f for f in current}
        if payload.get("attachments") is None:
            return current + [self._register_file(f) for _, f in uploads]
        result: list[FakeFile] = []
        for entry in payload["attachments"]:
            aid = int(entry.get("id", -1))
            if aid in by_index and aid not in used:
                used.add(aid)
                f = by_index[aid]
                if entry.get("filename"):
                    f.filename = str(entry["filename"])
                if entry.get("description"):
                    f.description = str(entry["description"])
                result.append(self._register_file(f))
            elif aid in existing:
                result.append(existing[aid])
        result += [self._register_file(f) for i, f in uploads if i not in used]
        return result

    @staticmethod
    def _embeds(raw: Any) -> list[dict[str, Any]]:
        return [{"type": "rich", **e} for e in (raw or [])]

    def _new_message(
        self,
        *,
        channel_id: int,
        guild_id: int | None,
        payload: dict[str, Any],
        uploads: list[tuple[int, FakeFile]],
        type: int = 0,
        webhook_id: int | None = None,
        interaction: InteractionRecord | None = None,
        flags: int = 0,
    ) -> FakeMessage:
        msg = FakeMessage(
            id=self.ids.next(),
            channel_id=channel_id,
            author=self.bot_user,
            guild_id=guild_id,
            content=str(payload.get("content") or ""),
            embeds=self._embeds(payload.get("embeds")),
            components=list(payload.get("components") or []),
            attachments=self._attachments([], payload, uploads),
            flags=flags,
            type=type,
            tts=bool(payload.get("tts")),
            webhook_id=webhook_id,
            interaction=interaction,
            message_reference=payload.get("message_reference"),
            last_payload=payload,
        )
        if msg.message_reference is not None and type == 0:
            msg.type = 19
        self.messages[msg.id] = msg
        return msg

    def _edit(
        self,
        msg: FakeMessage,
        payload: dict[str, Any],
        uploads: list[tuple[int, FakeFile]],
        rec: InteractionRecord | None,
    ) -> None:
        if "content" in payload:
            msg.content = str(payload["content"] or "")
        if "embeds" in payload:
            msg.embeds = self._embeds(payload["embeds"])
        if "components" in payload:
            msg.components = list(payload["components"] or [])
        if payload.get("flags") is not None:
            # ephemerality is fixed at creation; loading ends with any edit
            msg.flags = (msg.flags & EPHEMERAL) | (int(payload["flags"]) & ~(EPHEMERAL | LOADING))
        msg.flags &= ~LOADING
        if "attachments" in payload or uploads:
            msg.attachments = self._attachments(msg.attachments, payload, uploads)
        msg.edited_at = time.time()
        msg.last_payload = payload
        if rec is not None:
            rec.edits.append(msg.snapshot())
        self._changed(rec)

    def _msg_json(self, msg: FakeMessage) -> web.Response:
        return _json(msg.to_json(self.application_id))

    def _store_channel_message(self, msg: FakeMessage) -> None:
        self.messages[msg.id] = msg
        self._channel_messages.setdefault(msg.channel_id, []).append(msg)
        self.channel_log.append(msg)
        self._changed()

    # ================================================================== REST: misc / app

    async def _get_gateway(self, request: web.Request) -> web.StreamResponse:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_me(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        user = request.get(OAUTH_USER)
        if user is not None:
            return _json(self._oauth.me(user))
        return _json(
            {**self.bot_user.to_json(), "verified": True, "mfa_enabled": False, "locale": "en-US"}
        )

    async def _get_app(self, request: web.Request) -> web.StreamResponse:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "owner": self.owner.to_json(),
                "team": None,
                "bot": self.bot_user.to_json(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _empty_list(self, request: web.Request) -> web.StreamResponse:
        return _json([])

    async def _no_content_handler(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return _no_content()

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        f = self.files.get(int(request.match_info["fid"]))
        if f is None or any(
            m.deleted and any(a.id == f.id for a in m.attachments) for m in self.messages.values()
        ):
            # A deleted message's attachments are gone from the CDN with it.
            return web.Response(status=404, text="not found")
        if not f.kept:
            self.server_errors.append(
                f"the bot downloaded {f.filename!r}, whose bytes the fake did not keep: "
                "build FakeDiscord(keep_upload_bytes=True) for this test"
            )
            return web.Response(status=404, text="not kept")
        self.downloads.append((f.id, time.monotonic()))
        return web.Response(body=f.data, content_type=f.content_type or "application/octet-stream")

    async def _create_dm(self, request: web.Request) -> web.StreamResponse:
        payload, _ = self._body(request)
        user = self.users.get(int(payload.get("recipient_id", 0)))
        if user is None:
            raise _Reject(400, 50035, "Invalid Form Body")
        return _json(self.dm_channel(user).to_json())

    async def _my_guilds(self, request: web.Request) -> web.StreamResponse:
        """The guilds of the token's user (bearer), or of the bot."""
        user = request.get(OAUTH_USER)
        return _json(self._oauth.my_guilds(user or self.bot_user, request))

    async def _leave_guild(self, request: web.Request) -> web.StreamResponse:
        """The bot leaves a guild: it is gone from the bot's world (GUILD_DELETE), kept in
        ``left_guilds`` for asserts; a test can still send interactions from it."""
        await request.read()
        guild = self.guilds.pop(int(request.match_info["gid"]), None)
        if guild is None:
            raise _Reject(404, 10004, "Unknown Guild")
        guild.members.pop(self.bot_user.id, None)
        self.left_guilds[guild.id] = guild
        self._queue_event("GUILD_DELETE", {"id": str(guild.id)})
        self._changed()
        return _no_content()

    async def _get_user(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(int(request.match_info["uid"]))
        if user is None:
            raise _Reject(404, 10013, "Unknown User")
        return _json(user.to_json())

    # ================================================================== REST: commands

    def _gid(self, guild: FakeGuild | int | None) -> int | None:
        return guild.id if isinstance(guild, FakeGuild) else guild

    def _command_store(self, guild_id: int | None) -> dict[tuple[int, str], dict[str, Any]]:
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(guild_id, {})

    def _check_app(
        self, request: web.Request
    ) -> tuple[int | None, dict[tuple[int, str], dict[str, Any]]]:
        if request.match_info["app"] != str(self.application_id):
            raise _Reject(404, 10002, "Unknown Application")
        gid_raw = request.match_info.get("gid")
        gid = None if gid_raw is None else int(gid_raw)
        if gid is not None and gid not in self.guilds:
            raise _Reject(403, 50001, "Missing Access")
        return gid, self._command_store(gid)

    def _normalize_command(
        self, p: dict[str, Any], gid: int | None, cid: str | None
    ) -> dict[str, Any]:
        cmd = dict(p)
        cmd["id"] = cid or str(self.ids.next())
        cmd["application_id"] = str(self.application_id)
        cmd["version"] = str(self.ids.next())
        cmd.setdefault("type", 1)
        cmd.setdefault("description", "")
        cmd.setdefault("options", [])
        cmd.setdefault("default_member_permissions", None)
        cmd.setdefault("nsfw", False)
        if gid is not None:
            cmd["guild_id"] = str(gid)
        return cmd

    async def _list_commands(self, request: web.Request) -> web.StreamResponse:
        _, store = self._check_app(request)
        return _json(list(store.values()))

    async def _bulk_commands(self, request: web.Request) -> web.StreamResponse:
        gid, store = self._check_app(request)
        body = self._bodies.get(id(request))
        payloads = body.payload if body is not None and body.payload is not None else []
        if not isinstance(payloads, list):
            raise _Reject(400, 50035, "Invalid Form Body")
        new: dict[tuple[int, str], dict[str, Any]] = {}
        for p in payloads:
            key = (int(p.get("type", 1)), str(p["name"]))
            old = store.get(key)
            new[key] = self._normalize_command(p, gid, old["id"] if old else None)
        store.clear()
        store.update(new)
        self.sync_calls.append((gid, payloads))
        self._changed()
        return _json(list(new.values()))

    async def _upsert_command(self, request: web.Request) -> web.StreamResponse:
        gid, store = self._check_app(request)
        p, _ = self._body(request)
        key = (int(p.get("type", 1)), str(p["name"]))
        old = store.get(key)
        store[key] = self._normalize_command(p, gid, old["id"] if old else None)
        self._changed()
        return _json(store[key], 200 if old else 201)

    def _command_by_id(
        self, request: web.Request
    ) -> tuple[tuple[int, str], dict[str, Any], int | None]:
        gid, store = self._check_app(request)
        cid = request.match_info["cid"]
        for key, cmd in store.items():
            if cmd["id"] == cid:
                return key, cmd, gid
        raise _Reject(404, 10063, "Unknown application command")

    async def _get_command(self, request: web.Request) -> web.StreamResponse:
        return _json(self._command_by_id(request)[1])

    async def _edit_command(self, request: web.Request) -> web.StreamResponse:
        key, cmd, gid = self._command_by_id(request)
        p, _ = self._body(request)
        store = self._command_store(gid)
        del store[key]
        updated = self._normalize_command({**cmd, **p}, gid, cmd["id"])
        store[(int(updated.get("type", 1)), str(updated["name"]))] = updated
        self._changed()
        return _json(updated)

    async def _delete_command(self, request: web.Request) -> web.StreamResponse:
        key, _, gid = self._command_by_id(request)
        del self._command_store(gid)[key]
        self._changed()
        return _no_content()

    # ================================================================== REST: interactions

    def _check_deadline(self, rec: InteractionRecord) -> None:
        """Discord's deadlines, on ``self.clock``: no first response within ``ack_deadline``
        (3 s), or a token older than ``token_lifetime`` (15 min), and it is gone."""
        if rec.sent_at is None:
            return
        age = self.clock.now() - rec.sent_at
        late_ack = self.ack_deadline is not None and age > self.ack_deadline
        if (late_ack and not rec.callbacks) or (
            self.token_lifetime is not None and age > self.token_lifetime
        ):
            rec.expired = True

    async def _callback(self, request: web.Request) -> web.StreamResponse:
        now = request.get(ARRIVED) or self.clock.now()
        rec = self.records_by_id.get(int(request.match_info["iid"]))
        payload, uploads = self._body(request)
        if rec is None or rec.token != request.match_info["token"]:
            raise _Reject(404, 10062, "Unknown interaction")
        self._check_deadline(rec)
        if rec.first_callback_at is None:
            rec.first_callback_at = now  # even if rejected below: latency is still measured
        if rec.expired:
            raise _Reject(404, 10062, "Unknown interaction", rec)
        if rec.callbacks:
            raise _Reject(400, 40060, "Interaction has already been acknowledged.", rec)
        ctype = int(payload.get("type", 0))
        data: dict[str, Any] = payload.get("data") or {}
        if ctype not in _ALLOWED_CALLBACKS.get(rec.type, set()) or (
            ctype in (CB_DEFERRED_UPDATE, CB_UPDATE) and rec.target_message is None
        ):
            problem = f"callback type {ctype} is not valid for interaction type {rec.type}"
            errors = {"type": {"_errors": [{"code": "BASE_TYPE_CHOICES", "message": problem}]}}
            rej = _Reject(400, 50035, "Invalid Form Body", rec, errors)
            self.invalid_requests.append(
                FakeInvalidRequest(request.method, request.path, 400, 50035, [problem], payload)
            )
            raise rej
        rec.callbacks.append(FakeCallback(ctype, data, [f for _, f in uploads], now))

        interaction: dict[str, Any] = {"id": str(rec.id), "type": rec.type}
        resource: dict[str, Any] = {"type": ctype}
        msg: FakeMessage | None = None
        mtype = 20 if rec.type == APPLICATION_COMMAND else 0
        if ctype == CB_MESSAGE:
            msg = rec.original = self._new_message(
                channel_id=rec.channel_id,
                guild_id=rec.guild_id,
                payload=data,
                uploads=uploads,
                type=mtype,
                webhook_id=self.application_id,
                interaction=rec,
                flags=int(data.get("flags") or 0) & ~LOADING,
            )
        elif ctype == CB_DEFERRED_MESSAGE:
            msg = rec.original = self._new_message(
                channel_id=rec.channel_id,
                guild_id=rec.guild_id,
                payload={},
                uploads=[],
                type=mtype,
                webhook_id=self.application_id,
                interaction=rec,
                flags=(int(data.get("flags") or 0) & EPHEMERAL) | LOADING,
            )
        elif ctype in (CB_DEFERRED_UPDATE, CB_UPDATE):
            msg = rec.original = rec.target_message
            assert msg is not None
            if ctype == CB_UPDATE:
                self._edit(msg, data, uploads, rec)
        elif ctype == CB_AUTOCOMPLETE:
            rec.choices = list(data.get("choices") or [])
        elif ctype == CB_MODAL:
            modal = FakeModal(
                custom_id=str(data.get("custom_id", "")),
                title=str(data.get("title", "")),
                components=list(data.get("components") or []),
                record=rec,
            )
            rec.modal = self.modals[modal.custom_id] = modal
        if msg is not None:
            interaction["response_message_id"] = str(msg.id)
            interaction["response_message_loading"] = ctype == CB_DEFERRED_MESSAGE
            interaction["response_message_ephemeral"] = msg.ephemeral
            if ctype in (CB_MESSAGE, CB_DEFERRED_MESSAGE, CB_UPDATE):
                resource["message"] = msg.to_json(self.application_id)
        self._changed(rec)
        return _json({"interaction": interaction, "resource": resource})

    def _webhook_record(self, request: web.Request) -> InteractionRecord:
        if request.match_info["app"] != str(self.application_id):
            raise _Reject(404, 10015, "Unknown Webhook")
        rec = self.records_by_token.get(request.match_info["token"])
        if rec is not None:
            self._check_deadline(rec)
        if rec is None or rec.expired:
            raise _Reject(401, 50027, "Invalid Webhook Token", rec)
        return rec

    def _live_original(self, rec: InteractionRecord) -> FakeMessage:
        if rec.original is None or rec.original.deleted:
            raise _Reject(404, 10008, "Unknown Message", rec)
        return rec.original

    async def _get_original(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        return self._msg_json(self._live_original(rec))

    async def _edit_original(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        payload, uploads = self._body(request)
        msg = self._live_original(rec)
        self._edit(msg, payload, uploads, rec)
        return self._msg_json(msg)

    async def _delete_original(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        msg = self._live_original(rec)
        msg.deleted = True
        rec.deleted.append(msg)
        self._changed(rec)
        return _no_content()

    async def _followup(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        payload, uploads = self._body(request)
        if not rec.callbacks:
            raise _Reject(404, 10015, "Unknown Webhook", rec)
        orig = rec.original
        if (
            orig is not None
            and orig.loading
            and rec.callback_type == CB_DEFERRED_MESSAGE
            and not orig.deleted
        ):
            # Like Discord: the first followup after a "thinking" defer replaces the loading
            # message (same id, ephemerality chosen at defer time).
            self._edit(orig, payload, uploads, None)
            msg = orig
        else:
            msg = self._new_message(
                channel_id=rec.channel_id,
                guild_id=rec.guild_id,
                payload=payload,
                uploads=uploads,
                type=20 if rec.type == APPLICATION_COMMAND else 0,
                webhook_id=self.application_id,
                interaction=rec,
                flags=int(payload.get("flags") or 0) & ~LOADING,
            )
        rec.followups.append(msg)
        self._changed(rec)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return self._msg_json(msg)
        return _no_content()

    def _webhook_message(self, request: web.Request, rec: InteractionRecord) -> FakeMessage:
        msg = self.messages.get(int(request.match_info["mid"]))
        if msg is None or msg.deleted or msg.webhook_id != self.application_id:
            raise _Reject(404, 10008, "Unknown Message", rec)
        return msg

    async def _get_webhook_message(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        return self._msg_json(self._webhook_message(request, rec))

    async def _edit_webhook_message(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        payload, uploads = self._body(request)
        msg = self._webhook_message(request, rec)
        self._edit(msg, payload, uploads, rec)
        return self._msg_json(msg)

    async def _delete_webhook_message(self, request: web.Request) -> web.StreamResponse:
        rec = self._webhook_record(request)
        msg = self._webhook_message(request, rec)
        msg.deleted = True
        rec.deleted.append(msg)
        self._changed(rec)
        return _no_content()

    # ================================================================== REST: channels

    def _channel(self, request: web.Request) -> FakeChannel:
        ch = self.channels.get(int(request.match_info["cid"]))
        if ch is None:
            raise _Reject(404, 10003, "Unknown Channel")
        return ch

    def _channel_message(self, request: web.Request) -> FakeMessage:
        ch = self._channel(request)
        msg = self.messages.get(int(request.match_info["mid"]))
        if msg is None or msg.deleted or msg.channel_id != ch.id or msg.ephemeral:
            raise _Reject(404, 10008, "Unknown Message")
        return msg

    async def _get_channel(self, request: web.Request) -> web.StreamResponse:
        return _json(self._channel(request).to_json())

    async def _list_channel_messages(self, request: web.Request) -> web.StreamResponse:
        ch = self._channel(request)
        limit = int(request.query.get("limit", "50"))
        msgs = [m for m in self._channel_messages.get(ch.id, []) if not m.deleted][-limit:]
        return _json([m.to_json(self.application_id) for m in reversed(msgs)])

    async def _create_channel_message(self, request: web.Request) -> web.StreamResponse:
        ch = self._channel(request)
        payload, uploads = self._body(request)
        if ch.guild_id is not None:
            perms = self.guilds[ch.guild_id].permissions_in(self.bot_user.id, ch)
            need = (
                VIEW_CHANNEL
                # In a thread, Send Messages in Threads instead (permissions.md).
                | (SEND_MESSAGES_IN_THREADS if ch.is_thread else SEND_MESSAGES)
                | (ATTACH_FILES if uploads else 0)
                | (EMBED_LINKS if payload.get("embeds") else 0)
            )
            if perms & need != need:
                raise _Reject(403, 50013, "Missing Permissions")
        elif ch.recipient is not None and ch.recipient.id in self._no_dms:
            raise _Reject(403, 50007, "Cannot send messages to this user")
        if not (
            payload.get("content") or payload.get("embeds") or uploads or payload.get("components")
        ):
            raise _Reject(400, 50006, "Cannot send an empty message")
        msg = self._new_message(
            channel_id=ch.id,
            guild_id=ch.guild_id,
            payload=payload,
            uploads=uploads,
            flags=int(payload.get("flags") or 0) & ~(EPHEMERAL | LOADING),
        )
        self._store_channel_message(msg)
        if self.dispatch_message_create:
            self._spawn(self.dispatch("MESSAGE_CREATE", msg.to_json(self.application_id)))
        return self._msg_json(msg)

    def _open_thread(
        self, parent: FakeChannel, payload: dict[str, Any], *, thread_id: int, type: int
    ) -> FakeChannel:
        """A thread in `parent` (the bot needs View Channel and Create Public Threads there),
        announced with THREAD_CREATE as Discord does."""
        if parent.guild_id is None or parent.is_thread or parent.is_dm:
            raise _Reject(400, 50024, "Cannot execute action on this channel type")
        guild = self.guilds[parent.guild_id]
        perms = guild.permissions_in(self.bot_user.id, parent)
        if perms & (VIEW_CHANNEL | CREATE_PUBLIC_THREADS) != VIEW_CHANNEL | CREATE_PUBLIC_THREADS:
            raise _Reject(403, 50013, "Missing Permissions")
        thread = FakeChannel(
            id=thread_id,
            name=str(payload.get("name") or "thread"),
            type=type,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=self.bot_user.id,
            auto_archive_duration=int(payload.get("auto_archive_duration") or 4320),
        )
        self.channels[thread.id] = thread
        self._queue_event("THREAD_CREATE", {**thread.to_json(), "newly_created": True})
        self._changed()
        return thread

    async def _start_thread_from_message(self, request: web.Request) -> web.StreamResponse:
        """Start Thread from Message: the thread takes the message's id (one per message)."""
        msg = self._channel_message(request)
        parent = self._channel(request)
        payload, _ = self._body(request)
        if msg.id in self.channels:
            raise _Reject(400, 160004, "A thread has already been created for this message")
        thread = self._open_thread(parent, payload, thread_id=msg.id, type=11)
        return _json(thread.to_json(), 201)

    async def _start_thread(self, request: web.Request) -> web.StreamResponse:
        """Start Thread without Message (a public thread unless `type` says otherwise)."""
        parent = self._channel(request)
        payload, _ = self._body(request)
        kind = int(payload.get("type") or 12)
        thread = self._open_thread(parent, payload, thread_id=self.ids.next(), type=kind)
        return _json(thread.to_json(), 201)

    async def _get_channel_message(self, request: web.Request) -> web.StreamResponse:
        return self._msg_json(self._channel_message(request))

    async def _edit_channel_message(self, request: web.Request) -> web.StreamResponse:
        msg = self._channel_message(request)
        payload, uploads = self._body(request)
        if msg.author.id != self.bot_user.id:
            raise _Reject(403, 50005, "Cannot edit a message authored by another user")
        self._edit(msg, payload, uploads, msg.interaction)
        return self._msg_json(msg)

    async def _delete_channel_message(self, request: web.Request) -> web.StreamResponse:
        msg = self._channel_message(request)
        ch = self._channel(request)
        if msg.author.id != self.bot_user.id and ch.guild_id is not None:
            # Others' messages need Manage Messages in that channel.
            perms = self.guilds[ch.guild_id].permissions_in(self.bot_user.id, ch)
            if not perms & MANAGE_MESSAGES:
                raise _Reject(403, 50013, "Missing Permissions")
        msg.deleted = True
        self._changed(msg.interaction)
        return _no_content()

    async def _add_reaction(self, request: web.Request) -> web.StreamResponse:
        msg = self._channel_message(request)
        msg.reactions.append(request.match_info["emoji"])
        self._changed(msg.interaction)
        return _no_content()

    async def _remove_reaction(self, request: web.Request) -> web.StreamResponse:
        msg = self._channel_message(request)
        with contextlib.suppress(ValueError):
            msg.reactions.remove(request.match_info["emoji"])
        self._changed(msg.interaction)
        return _no_content()

    # ================================================================== REST: guilds

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.guilds.get(int(request.match_info["gid"]))
        if guild is None:
            raise _Reject(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request) -> web.StreamResponse:
        return _json(self._guild(request).to_json())

    async def _get_guild_channels(self, request: web.Request) -> web.StreamResponse:
        return _json([c.to_json() for c in self._guild(request).channels.values()])

    async def _get_guild_roles(self, request: web.Request) -> web.StreamResponse:
        return _json([r.to_json() for r in self._guild(request).roles.values()])

    async def _list_members(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild(request)
        limit = int(request.query.get("limit", "1"))
        after = int(request.query.get("after", "0"))
        members = sorted(
            (m for m in guild.members.values() if m.user.id > after), key=lambda m: m.user.id
        )
        return _json([m.to_json() for m in members[:limit]])

    async def _get_member(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild(request)
        member = guild.members.get(int(request.match_info["uid"]))
        if member is None:
            raise _Reject(404, 10007, "Unknown Member")
        return _json(member.to_json())


# ====================================================================== running a real bot


ClientT = TypeVar("ClientT", bound=discord.Client)


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord, bot: ClientT, token: str = "fake-bot-token", *, timeout: float = 10.0
) -> AsyncIterator[ClientT]:
    """Log ``bot`` in to ``fake``, connect it, wait until ready with every fake guild cached;
    close it on exit. Build the bot with ``guild_ready_timeout=0`` for a fast start."""
    if not fake.base_url:
        raise RuntimeError("start the FakeDiscord before running a bot against it")
    if f"{fake.base_url}{API}" != discord.http.Route.BASE:
        fake.install()
    connect_task: asyncio.Task[None] | None = None
    try:
        await bot.login(token)
        connect_task = asyncio.create_task(bot.connect(reconnect=True), name="fake-discord-bot")
        await _wait_ready(fake, bot, connect_task, timeout)
        yield bot
    finally:
        await bot.close()
        if connect_task is not None:
            try:
                async with asyncio.timeout(5):
                    await connect_task
            except asyncio.CancelledError:
                raise
            except BaseException:
                log.exception("fake discord: bot.connect() ended with an error")


async def _wait_ready(
    fake: FakeDiscord, bot: discord.Client, connect_task: asyncio.Task[None], timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait(
            {ready, connect_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        if not ready.done():
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
    if connect_task in done:
        exc = connect_task.exception()
        raise RuntimeError(f"bot.connect() ended before the bot was ready: {exc!r}") from exc
    if ready not in done:
        raise TimeoutError(
            f"bot not ready within {timeout}s (gateway connects={fake.gateway_connects}, "
            f"identifies={len(fake.identifies)}, unknown routes={fake.unknown_routes}, "
            f"errors={fake.http_errors[-5:]})"
        )
    while any(bot.get_guild(gid) is None for gid in fake.guilds):
        if loop.time() > deadline:
            missing = [g for g in fake.guilds if bot.get_guild(g) is None]
            raise TimeoutError(f"bot ready but guilds {missing} never reached its cache")
        await asyncio.sleep(0.005)


def _event_guild(event: str, data: Any) -> int | None:
    """The guild a gateway event is about (None: a DM or no guild)."""
    if not isinstance(data, dict):
        return None
    if event in ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"):
        value = data.get("id")
    else:
        value = data.get("guild_id")
    return int(value) if value else None
