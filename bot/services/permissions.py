"""Who may do what, decided in one place (DESIGN 7a). Cogs and other services ask here.

The rules:
- an image is seen by its owner and bot admins anywhere, and by the members of its own server
  there;
- Reroll and Edit (a new paid job, charged to the presser's wallet) are its owner's alone, and
  only in the image's own server: not a moderator's, not a bot admin's;
- Delete is its owner's, a moderator's of the image's own server, and a bot admin's;
- a moderator (Manage Server) acts on the images and wallets of *their own* server only, and
  only from inside it: Manage Server in one server means nothing in another;
- a bot admin (ADMIN_USER_IDS, or the ADMIN role in the database) may do everything else,
  everywhere;
- with ECONOMY_SCOPE=global a wallet belongs to no server, so only bot admins change or inspect
  other members' balances (as Red-DiscordBot's bank when global);
- servers outside ALLOWED_GUILD_IDS get nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import EconomyScope
from bot.i18n import language_from_locale
from bot.services.errors import ImageNotFound, InvalidInput, NotAllowed
from storage.models import Image, User


@dataclass(frozen=True)
class Identity:
    """Who is acting and where, as the Discord adapter saw it (no discord objects here)."""

    discord_id: int
    display_name: str
    locale: str | None = None
    is_bot: bool = False
    # Manage Server in `guild_id` (the server the interaction came from; None in a DM).
    can_manage_guild: bool = False
    guild_id: int | None = None
    channel_id: int | None = None
    # The channel a thread belongs to (channel rules apply to its threads).
    parent_channel_id: int | None = None
    role_ids: frozenset[int] = frozenset()
    # The channel (or a thread's parent) is age-restricted.
    channel_nsfw: bool = False
    # Acting from outside any channel (the HTTP API): nothing is posted anywhere, so a
    # server's channel list for /generate and /upload does not apply; its role rule does.
    outside_channels: bool = False

    @property
    def language(self) -> str:
        """The reply language: this interaction's locale decides."""
        return language_from_locale(self.locale)


@dataclass(frozen=True)
class Actor:
    """An identity with what the bot knows about them: their account (if any) and whether they
    are a bot admin."""

    identity: Identity
    user: User | None
    bot_admin: bool

    @property
    def discord_id(self) -> int:
        return self.identity.discord_id

    @property
    def guild_id(self) -> int | None:
        return self.identity.guild_id

    def owns(self, image: Image) -> bool:
        return self.user is not None and image.user_id == self.user.id


def reaches_own(actor: Actor, user_id: str, guild_id: int | None) -> bool:
    """Personal access (the HTTP API, the web gallery): what is the actor's own, of the server
    they act in, or of every server when they act in none (as in a DM)."""
    if actor.user is None or actor.user.id != user_id:
        return False
    return actor.guild_id is None or guild_id == actor.guild_id


@dataclass(frozen=True)
class ImageActions:
    """What an actor may do with an image they are looking at."""

    remix: bool  # Reroll and Edit (they cost the presser coins: owners only)
    delete: bool


@dataclass(frozen=True)
class ChannelAccess:
    """What the bot itself may do in a channel, as the Discord adapter read it."""

    view: bool = False
    send: bool = False
    embed: bool = False
    attach: bool = False


# What the moderation log needs from its channel, in the order members read them.
_LOG_NEEDS = (
    ("view", "View Channel"),
    ("send", "Send Messages"),
    ("embed", "Embed Links"),
    ("attach", "Attach Files"),
)


class PermissionService:
    """Every permission rule of the bot. Pure: no I/O."""

    def __init__(
        self,
        *,
        scope: EconomyScope,
        admin_user_ids: frozenset[int] = frozenset(),
        allowed_guild_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.scope = scope
        self.admin_user_ids = admin_user_ids
        self.allowed_guild_ids = allowed_guild_ids

    # Who --------------------------------------------------------------------------------

    def is_bot_admin(self, discord_id: int, user: User | None) -> bool:
        """ADMIN_USER_IDS, or the ADMIN role on the user's row."""
        return discord_id in self.admin_user_ids or (user is not None and user.is_admin)

    def moderates(self, actor: Actor, guild_id: int | None) -> bool:
        """Bot admins everywhere; a member with Manage Server only for the server they act in,
        and only when `guild_id` is that server."""
        if actor.bot_admin:
            return True
        return (
            guild_id is not None
            and actor.identity.guild_id == guild_id
            and actor.identity.can_manage_guild
        )

    # Where ------------------------------------------------------------------------------

    def guild_allowed(self, guild_id: int | None) -> bool:
        """DMs always; servers when ALLOWED_GUILD_IDS is empty or lists them."""
        return guild_id is None or not self.allowed_guild_ids or guild_id in self.allowed_guild_ids

    def check_guild_allowed(self, guild_id: int | None) -> None:
        if not self.guild_allowed(guild_id):
            raise NotAllowed("error.guild_not_allowed")

    def check_allowed_here(
        self,
        actor: Actor,
        *,
        channel_ids: tuple[int, ...],
        role_id: int | None = None,
        nsfw_only: bool = False,
    ) -> None:
        """A server's own rules for /generate and /upload: its channels, its role, and
        (when the owner asks) age-restricted channels only."""
        identity = actor.identity
        # Outside any channel (the HTTP API) is not age-restricted either.
        if nsfw_only and not identity.channel_nsfw:
            raise NotAllowed("moderation.nsfw_only")
        in_channel = {identity.channel_id, identity.parent_channel_id} & set(channel_ids)
        if channel_ids and not identity.outside_channels and not in_channel:
            raise NotAllowed(
                "settings.wrong_channel", channels=", ".join(f"<#{c}>" for c in channel_ids)
            )
        if role_id is not None and role_id not in identity.role_ids:
            raise NotAllowed("settings.role_required", role=f"<@&{role_id}>")

    # Images -----------------------------------------------------------------------------

    def can_see_image(self, actor: Actor, image: Image) -> bool:
        """Owners and bot admins anywhere; other members only in the image's own server."""
        if actor.owns(image) or actor.bot_admin:
            return True
        return actor.guild_id is not None and image.guild_id == actor.guild_id

    def check_see_image(self, actor: Actor, image: Image) -> None:
        # "Not found" rather than "not allowed": another server's images don't exist here.
        if not self.can_see_image(actor, image):
            raise ImageNotFound()

    def can_reach_own(self, actor: Actor, image: Image) -> bool:
        """Personal access (the HTTP API and the web gallery): the actor's own images, of the
        server they act in, or of every server when they act in none (as in a DM)."""
        return self.reaches_own(actor, image.user_id, image.guild_id)

    def reaches_own(self, actor: Actor, user_id: str, guild_id: int | None) -> bool:
        """Personal access to what belongs to user `user_id` in server `guild_id` (an image,
        a job): the same rule as `can_reach_own`."""
        return reaches_own(actor, user_id, guild_id)

    def check_reach_own(self, actor: Actor, image: Image) -> None:
        # "Not found", never "not allowed": others' images don't exist for personal access.
        if not self.can_reach_own(actor, image):
            raise ImageNotFound()

    def image_actions(self, actor: Actor, image: Image) -> ImageActions:
        return ImageActions(
            remix=self._may_remix(actor, image) is None,
            delete=actor.owns(image) or self.moderates(actor, image.guild_id),
        )

    def check_delete_image(self, actor: Actor, image: Image, owner_mention: str) -> None:
        self.check_see_image(actor, image)
        if not self.image_actions(actor, image).delete:
            raise NotAllowed("error.not_yours", owner=owner_mention)

    def check_remix_image(self, actor: Actor, image: Image, owner_mention: str) -> None:
        """Reroll and Edit: the owner's, charged to their wallet of the server they press it
        in, which must be the image's own server."""
        self.check_see_image(actor, image)
        problem = self._may_remix(actor, image)
        if problem == "not_yours":
            # Not "or a moderator": remixing is the owner's alone (see the rules above).
            raise NotAllowed("error.remix_owner_only", owner=owner_mention)
        if problem is not None:
            raise NotAllowed(problem)

    def _may_remix(self, actor: Actor, image: Image) -> str | None:
        if not actor.owns(image):
            return "not_yours"
        if actor.guild_id is None:
            return "error.remix_in_server"
        if image.guild_id is not None and image.guild_id != actor.guild_id:
            return "error.remix_other_server"
        return None

    def check_cancel_job(self, actor: Actor, user_id: str, guild_id: int | None) -> bool:
        """Cancelling a waiting job: the member who ordered it, a moderator of the job's own
        server, a bot admin. Whether the actor cancels as a moderator (not their own job)."""
        if actor.user is not None and actor.user.id == user_id:
            return False
        if self.moderates(actor, guild_id):
            return True
        raise NotAllowed("cancel.not_yours")

    def check_see_gallery(self, actor: Actor, owner_discord_id: int) -> None:
        """In a server, members see each other's images of that server; in a DM, only your
        own (bot admins: anyone's)."""
        if actor.guild_id is None and owner_discord_id != actor.discord_id and not actor.bot_admin:
            raise NotAllowed("gallery.dm_own_only")

    # Wallets ----------------------------------------------------------------------------

    def check_see_wallet(self, actor: Actor, owner_discord_id: int) -> None:
        """Your own; in guild scope a moderator sees their server's wallets; in global scope
        only bot admins see others'."""
        if owner_discord_id == actor.discord_id or actor.bot_admin:
            return
        if self.scope is EconomyScope.GLOBAL:
            raise NotAllowed("coins.other_global")
        if not self.moderates(actor, actor.guild_id):
            raise NotAllowed("coins.other_forbidden")

    def check_grant(self, actor: Actor) -> None:
        """Minting coins: in guild scope, moderators of this server (into its wallets); in
        global scope, bot admins only."""
        if actor.bot_admin:
            return
        if self.scope is EconomyScope.GLOBAL:
            raise NotAllowed("grant.global_admins_only")
        if not self.moderates(actor, actor.guild_id):
            raise NotAllowed("grant.not_admin")

    # Settings ---------------------------------------------------------------------------

    def check_change_settings(self, actor: Actor, guild_id: int) -> None:
        if not self.moderates(actor, guild_id):
            raise NotAllowed("settings.not_allowed")

    def check_log_channel(self, access: ChannelAccess | None, channel: str) -> None:
        """The moderation log posts images with a Delete button: the bot must see the
        channel and send messages, embeds and files there."""
        if access is None:
            raise InvalidInput("settings.unknown_channel", value=channel)
        missing = [name for field, name in _LOG_NEEDS if not getattr(access, field)]
        if missing:
            raise InvalidInput(
                "settings.log_channel_no_access", channel=channel, missing=", ".join(missing)
            )

    # Moderation -------------------------------------------------------------------------

    def check_moderate(self, actor: Actor, guild_id: int) -> None:
        """Blocklists, member blocks, the audit: that server's moderators and bot admins."""
        if not self.moderates(actor, guild_id):
            raise NotAllowed("moderation.not_allowed")

    def check_moderator_delete(self, actor: Actor, image: Image) -> None:
        """The moderation log's Delete: moderators of the image's server and bot admins
        (not its owner: their own Delete is under the image)."""
        self.check_see_image(actor, image)
        if not self.moderates(actor, image.guild_id):
            raise NotAllowed("moderation.not_allowed")

    def sees_host_budget(self, actor: Actor) -> bool:
        """The deployment's own budget (MONTHLY_BUDGET_USD) is the host's business: bot
        admins only."""
        return actor.bot_admin

    def check_usage(self, actor: Actor, guild_id: int | None) -> None:
        """/usage: a server's moderators for that server; bot admins for any or all."""
        if actor.bot_admin:
            return
        if guild_id is None or not self.moderates(actor, guild_id):
            raise NotAllowed("usage.not_allowed")
