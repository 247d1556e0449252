"""The Cancel button under a queued job's message (issue 23, item 3).

The member who ordered the job, a moderator of its server or a bot admin may press it; the
rule and the refund are the services' (bot.services.cancels, the job engine). Anyone else is
refused privately. A job a worker has started is not cancelled: the presser is told so.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t
from cogs.common import identity_of, language_of, take_turn
from cogs.errors import report_error

if TYPE_CHECKING:
    from bot.app import Interaction

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class CancelJobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"nb:cancel:(?P<id>{UUID})"
):
    """Cancels the queued job `job_id` (persistent: its id is in the custom_id)."""

    def __init__(self, job_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Cancel",
                style=discord.ButtonStyle.secondary,
                emoji="✖️",
                custom_id=f"nb:cancel:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CancelJobButton:
        return cls(match["id"], getattr(item, "label", None))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        bot = interaction.client
        try:
            take_turn(interaction, "other")
            bot.permissions.check_guild_allowed(interaction.guild_id)
            actor = await bot.accounts.actor(identity_of(interaction))
            # Acknowledged first (no message yet): the job's own message shows the outcome.
            await interaction.response.defer()
            cancelled = await bot.cancels.cancel(actor, self.job_id)
        except Exception as error:
            await report_error(interaction, error)
            return
        language = await language_of(interaction)
        if not cancelled.told:
            # Its listener is not in this process (or gone): say it on the message here.
            reason = t(language, str(cancelled.job.result.get("key", "reason.cancelled")))
            text = t(language, "gen.failed", reason=reason, coins=cancelled.refunded)
            await interaction.edit_original_response(content=text, view=None)
        if cancelled.by_moderator:
            await interaction.followup.send(
                t(language, "cancel.done_moderator", coins=cancelled.refunded), ephemeral=True
            )


def cancel_view(job_id: str, language: str) -> discord.ui.View:
    """The queued message's Cancel button."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelJobButton(job_id, t(language, "cancel.button")))
    return view
