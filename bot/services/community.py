"""A member's own choices and the server's leaderboard.

`/settings me`: private mode (a member's results come back only to them, where the server's
`private_mode` setting allows it, like Midjourney's /private) and leaving the leaderboard.
`/leaderboard`: a server's top creators (images made there) and coin holders (its wallets, or
in the global economy the global wallets of its members who used the bot there), without the
members who opted out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.services.accounts import AccountService
from bot.services.errors import NotAllowed
from bot.services.permissions import Identity, PermissionService
from bot.services.settings import EffectiveSettings
from bot.services.wallets import WalletService
from storage.preferences import MemberPreferenceRepository, Preferences, Standing

#: How long a member's private-mode choice is used from memory (another process may have
#: changed it; this process's own changes apply at once).
CACHE_SECONDS = 30.0
LEADERBOARD_SIZE = 10


@dataclass(frozen=True)
class Leaderboard:
    creators: list[Standing]
    holders: list[Standing]


class CommunityService:
    """Members' preferences and the leaderboard."""

    def __init__(
        self,
        repo: MemberPreferenceRepository,
        *,
        accounts: AccountService,
        wallets: WalletService,
        permissions: PermissionService,
    ) -> None:
        self.repo = repo
        self.accounts = accounts
        self.wallets = wallets
        self.permissions = permissions
        self._private: dict[int, tuple[float, bool]] = {}

    async def preferences(self, identity: Identity) -> Preferences:
        user = await self.accounts.find(identity.discord_id)
        return await self.repo.get(user.id) if user is not None else Preferences()

    async def choose(
        self,
        identity: Identity,
        *,
        private_results: bool | None = None,
        leaderboard_hidden: bool | None = None,
    ) -> Preferences:
        """Store the member's choices (None: unchanged); their account is made if needed."""
        self.permissions.check_guild_allowed(identity.guild_id)
        user = await self.accounts.ensure_user(identity)
        chosen = await self.repo.set(
            user.id, private_results=private_results, leaderboard_hidden=leaderboard_hidden
        )
        self._remember(identity.discord_id, chosen.private_results)
        return chosen

    async def keeps_private(self, discord_id: int, settings: EffectiveSettings) -> bool:
        """Whether a member's results come back to them only: their private mode, where the
        server allows it (a read at most every CACHE_SECONDS per member)."""
        if not settings.private_mode:
            return False
        cached = self._private.get(discord_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        private = (await self.repo.of_discord_user(discord_id)).private_results
        self._remember(discord_id, private)
        return private

    def _remember(self, discord_id: int, private: bool) -> None:
        if len(self._private) >= 100_000:
            self._private.clear()
        self._private[discord_id] = (time.monotonic(), private)

    async def leaderboard(self, identity: Identity) -> Leaderboard:
        """The server's top creators and coin holders (members who opted out are left out)."""
        if identity.guild_id is None:
            raise NotAllowed("error.guild_only")
        self.permissions.check_guild_allowed(identity.guild_id)
        guild_id = identity.guild_id
        creators = await self.repo.top_creators(guild_id, limit=LEADERBOARD_SIZE)
        holders = await self.repo.top_holders(
            guild_id, per_server=self.wallets.per_server, limit=LEADERBOARD_SIZE
        )
        return Leaderboard(creators, holders)
