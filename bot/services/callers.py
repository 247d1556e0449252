"""Who is calling over HTTP, as a Member the other services understand.

An API call carries a token: it acts as its member, in its server, with the roles Discord
says that member has there now (a member who left the server can no longer use it). A web
gallery visitor acts as themselves, in the server whose gallery they look at (or in none: their
own images of every server, as in a DM).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.accounts import AccountService
from bot.services.directory import MemberDirectory
from bot.services.errors import NotAllowed, Unauthenticated
from bot.services.members import Member, MemberService
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.tokens import TokenService
from storage.api_tokens import ApiToken


@dataclass(frozen=True)
class ApiCaller:
    """A request's member and the token it used."""

    member: Member
    token: ApiToken

    @property
    def actor(self) -> Actor:
        return self.member.actor


class CallerService:
    """Turns HTTP credentials into members and actors."""

    def __init__(
        self,
        *,
        tokens: TokenService,
        members: MemberService,
        accounts: AccountService,
        permissions: PermissionService,
        directory: MemberDirectory,
    ) -> None:
        self.tokens = tokens
        self.members = members
        self.accounts = accounts
        self.permissions = permissions
        self.directory = directory

    async def from_token(self, raw: str) -> ApiCaller:
        """The member a bearer token acts as; raises Unauthenticated or NotAllowed."""
        token = await self.tokens.authenticate(raw)
        self.permissions.check_guild_allowed(token.guild_id)
        user = await self.accounts.get(token.user_id)
        if user is None or user.discord_id is None:
            raise Unauthenticated("api.token_invalid")
        info = await self.directory.member(token.guild_id, user.discord_id)
        if info is None:
            raise Unauthenticated("api.not_member")
        identity = Identity(
            discord_id=user.discord_id,
            display_name=info.display_name,
            # None: API calls never change the language Discord messages use.
            locale=None,
            is_bot=info.is_bot,
            can_manage_guild=info.can_manage_guild,
            guild_id=token.guild_id,
            role_ids=info.role_ids,
            outside_channels=True,
        )
        return ApiCaller(await self.members.enter(identity), token)

    async def web_member(self, discord_id: int, guild_id: int) -> Identity:
        """A signed-in web visitor ordering in a server: as Discord says they are there now
        (their roles, Manage Server, whether a bot), as an API token's member is; raises
        NotAllowed when they are no longer in it."""
        self.permissions.check_guild_allowed(guild_id)
        info = await self.directory.member(guild_id, discord_id)
        if info is None:
            raise NotAllowed("api.not_member")
        return Identity(
            discord_id=discord_id,
            display_name=info.display_name,
            is_bot=info.is_bot,
            can_manage_guild=info.can_manage_guild,
            guild_id=guild_id,
            role_ids=info.role_ids,
            outside_channels=True,
        )

    async def visitor(self, discord_id: int, display_name: str, guild_id: int | None) -> Actor:
        """A signed-in web visitor looking at one server's gallery (or all of their own
        images with `guild_id` None). Never creates an account."""
        self.permissions.check_guild_allowed(guild_id)
        identity = Identity(
            discord_id=discord_id,
            display_name=display_name,
            guild_id=guild_id,
            outside_channels=True,
        )
        return await self.accounts.actor(identity)
