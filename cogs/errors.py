"""One error handler for commands, buttons, selects and modals (an extension: it installs
itself on the command tree, so the composition root imports no cog).

Known errors become short, localised, ephemeral messages; anything else is logged with an
error id that the user sees, so an owner can find it in the logs.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.observe import bind_interaction
from bot.services.errors import NotEnoughCoins, UserFacingError
from cogs.common import language_of, reply, take_turn

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)

# The rate limit each command counts against (bot.services.ratelimits); the rest: "other".
# None: the command's service counts it (a paid job's "generate" turn is bot.services.orders',
# the same on every surface).
COMMAND_ACTIONS: dict[str, str | None] = {
    "generate": None, "describe": None, "upload": "upload", "gallery": "gallery", "coins": "coins",
    # A paid job's message command takes its "generate" turn where it is ordered.
    "Describe with Nano Banana": None,
}  # fmt: skip


def _unwrap(error: BaseException) -> BaseException:
    """The exception a command raised, out of discord.py's wrappers."""
    if isinstance(error, app_commands.CommandInvokeError):
        return error.original
    return error


async def describe(itx: Interaction, error: BaseException) -> str:
    """The user-facing text for an error (logging unexpected ones with an id)."""
    language = await language_of(itx)
    error = _unwrap(error)
    if isinstance(error, NotEnoughCoins):
        return t(language, "error.coins", balance=error.balance, cost=error.cost)
    if isinstance(error, UserFacingError):
        return t(language, error.key, **error.params)
    if isinstance(error, app_commands.CommandOnCooldown):
        return t(language, "error.cooldown", seconds=f"{error.retry_after:.0f}")
    if isinstance(error, app_commands.NoPrivateMessage):
        return t(language, "error.guild_only")
    if isinstance(error, app_commands.MissingPermissions):
        names = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return t(language, "error.missing_permissions", permissions=names)
    if isinstance(error, app_commands.TransformerError):
        return t(language, "error.invalid")
    if isinstance(error, app_commands.CheckFailure):
        return t(language, "error.not_allowed")
    error_id = uuid.uuid4().hex[:8]
    data: dict[str, Any] = dict(itx.data or {})
    command = itx.command.qualified_name if itx.command else data.get("custom_id")
    log.error(
        "unexpected error id=%s user=%s command=%s", error_id, itx.user.id, command,
        exc_info=error,
    )  # fmt: skip
    return t(language, "error.unexpected", error_id=error_id)


def log_command(itx: Interaction, outcome: str) -> None:
    """One structured line per command: who, what, how it ended, how long it took."""
    started = itx.extras.get("started_at")
    duration = time.monotonic() - started if isinstance(started, float) else -1.0
    name = itx.command.qualified_name if itx.command else "?"
    log.info(
        "command=%s user=%s guild=%s outcome=%s duration=%.3fs",
        name, itx.user.id, itx.guild_id, outcome, duration,
    )  # fmt: skip


def expected(error: BaseException) -> bool:
    """Whether `describe` has a message for this error (a refusal), rather than an error id
    for an unexpected one."""
    return isinstance(
        _unwrap(error),
        UserFacingError | app_commands.CommandOnCooldown | app_commands.NoPrivateMessage
        | app_commands.MissingPermissions | app_commands.TransformerError
        | app_commands.CheckFailure,
    )  # fmt: skip


async def report_error(itx: Interaction, error: BaseException) -> None:
    """Tell the user what went wrong, ephemerally; never raises."""
    bind_interaction(itx)
    # The outcome /metrics counts when this answer goes out (bot.observe).
    itx.extras["outcome"] = "refused" if expected(error) else "error"
    if itx.command is not None:
        original = _unwrap(error)
        outcome = getattr(original, "key", None) or type(original).__name__
        log_command(itx, f"refused:{outcome}")
    try:
        await reply(itx, await describe(itx, error))
    except discord.HTTPException:
        log.warning("could not report an error to user %s", itx.user.id)


class ErrorsCog(commands.Cog):
    """Installs the one error handler and the per-command timing on the bot's command tree
    (as RoboDanny and python-discord do), and restores the tree's own on unload."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot
        self._saved: tuple[Any, Any] | None = None

    async def cog_load(self) -> None:
        tree = self.bot.tree
        self._saved = (tree.on_error, tree.interaction_check)
        tree.on_error = self.on_app_command_error  # type: ignore[method-assign]
        tree.interaction_check = self.start_timer  # type: ignore[method-assign]

    async def cog_unload(self) -> None:
        if self._saved is not None:
            tree = self.bot.tree
            tree.on_error, tree.interaction_check = self._saved  # type: ignore[method-assign]
            self._saved = None

    async def start_timer(self, interaction: Interaction) -> bool:
        """Runs before every app command: remember when it started, for `log_command`, and
        count it against the member's rate limit (a refusal answers "try again in N s")."""
        interaction.extras["started_at"] = time.monotonic()
        bind_interaction(interaction)
        if interaction.type is discord.InteractionType.autocomplete:
            # Suggestions while the member types: not a use of the command (each keystroke
            # would otherwise take a turn, and refuse the command itself once sent).
            return True
        command = interaction.command
        if isinstance(command, app_commands.ContextMenu):
            root = command.name  # message commands are named in words
        else:
            root = command.qualified_name.split()[0] if command is not None else ""
        action = COMMAND_ACTIONS.get(root, "other")
        if action is not None:
            take_turn(interaction, action)
        return True

    async def on_app_command_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)

    @commands.Cog.listener()
    async def on_app_command_completion(
        self,
        interaction: Interaction,
        command: app_commands.Command[Any, Any, Any] | app_commands.ContextMenu,
    ) -> None:
        log_command(interaction, "ok")


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(ErrorsCog(bot))
