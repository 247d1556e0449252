"""`/usage`: images and their estimated cost (today, this month, last month), by model and
size, the top members, the budgets left, and a chart of the last 30 days. Moderators see their
server; bot admins any server (`server:<id>`) or all (`server:all`). Always ephemeral."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from bot.i18n.formats import month_year
from bot.services.budgets import ServerCaps, UsageReport
from bot.services.charts import usage_chart
from bot.services.errors import InvalidInput
from bot.services.pricing import PRICES_AS_OF, format_usd
from bot.services.types import CapKind, Totals
from cogs.common import TenantCog, command_text, identity_of, language_of, option_texts, reply
from cogs.images import BANANA

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

CHART_NAME = "usage.png"


def _totals(language: str, totals: Totals) -> str:
    line = t(language, "usage.line", images=totals.images, cost=format_usd(totals.cost_micros))
    extras = [t(language, "usage.coins", count=totals.coins)]
    if totals.in_flight:
        extras.append(t(language, "usage.in_flight", jobs=totals.in_flight))
    return f"{line}\n{' · '.join(extras)}"


def _model_label(model: str | None, model_name: Callable[[str], str]) -> str:
    if not model:
        return "?"
    name = model_name(model)
    return model if name in (model, "?") else f"{name} (`{model}`)"


def usage_embed(
    language: str,
    report: UsageReport,
    title: str,
    *,
    host_budget: bool,
    members: dict[str, int | None],
    model_name: Callable[[str], str] = str,
) -> discord.Embed:
    """The report as an embed. ``model_name`` gives a model's name as members know it; the
    API id follows it in code type, as Google's bill names it."""
    embed = discord.Embed(title=title, colour=BANANA, timestamp=report.generated_at)
    for key, totals in (
        ("usage.today", report.today),
        ("usage.this_month", report.this_month),
        ("usage.last_month", report.last_month),
    ):
        embed.add_field(name=t(language, key), value=_totals(language, totals))
    none = t(language, "usage.none")
    models = [
        f"{_model_label(g.key[0], model_name)}{f' · {g.key[1]}' if g.key[1] else ''}: "
        + t(language, "usage.line", images=g.images, cost=format_usd(g.cost_micros))
        for g in report.by_model
    ]
    embed.add_field(name=t(language, "usage.by_model"), value="\n".join(models) or none,
                    inline=False)  # fmt: skip
    if report.guild_id is None:
        servers = [
            f"`{g.key[0] or 'DM'}`: "
            + t(language, "usage.line", images=g.images, cost=format_usd(g.cost_micros))
            for g in report.by_server
        ]
        embed.add_field(name=t(language, "usage.by_server"), value="\n".join(servers) or none,
                        inline=False)  # fmt: skip
    member_lines = [
        f"{n}. <@{members.get(g.key[0] or '')}> "
        + t(language, "usage.line", images=g.images, cost=format_usd(g.cost_micros))
        for n, g in enumerate(report.top_members, start=1)
    ]
    embed.add_field(name=t(language, "usage.top_members"), value="\n".join(member_lines) or none,
                    inline=False)  # fmt: skip
    budgets = []
    for budget in report.budgets:
        cap = budget.cap
        if cap.guild_id is None and not host_budget:
            continue
        name = (
            "usage.cap.global"
            if cap.guild_id is None
            else ("usage.cap.server_day" if cap.kind is CapKind.IMAGES_PER_DAY else
                  "usage.cap.server_month")
        )  # fmt: skip
        money = cap.kind is CapKind.USD_PER_MONTH
        left = format_usd(budget.left) if money else str(budget.left)
        limit = format_usd(cap.limit) if money else str(cap.limit)
        budgets.append(
            t(language, "usage.budget_line", name=t(language, name), left=left, limit=limit,
              at=int(budget.resets_at.timestamp()))
        )  # fmt: skip
    embed.add_field(name=t(language, "usage.budgets"),
                    value="\n".join(budgets) or t(language, "usage.no_budgets"),
                    inline=False)  # fmt: skip
    embed.set_image(url=f"attachment://{CHART_NAME}")
    embed.set_footer(text=t(language, "usage.footer", prices=month_year(language, PRICES_AS_OF)))
    return embed


class UsageCog(TenantCog):
    """What images cost the host."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("usage"))
    @app_commands.describe(**option_texts("usage", "server"))
    async def usage(
        self, itx: Interaction, server: app_commands.Range[str, 0, 30] | None = None
    ) -> None:
        language = await language_of(itx)
        actor = await self.bot.accounts.actor(identity_of(itx))
        target = itx.guild_id
        if server is not None and server.strip():
            choice = server.strip().lower()
            if choice in ("all", "todos", "todas"):
                target = None
            elif choice.isdigit() and len(choice) < 25:
                target = int(choice)
            else:
                raise InvalidInput("usage.bad_server", value=server[:30])
        self.bot.permissions.check_usage(actor, target)
        await itx.response.defer(ephemeral=True, thinking=True)
        caps = ServerCaps()
        if target is not None:
            settings = await self.bot.guild_settings.effective(target)
            caps = ServerCaps(settings.daily_image_cap, settings.monthly_budget_usd)
        report = await self.bot.budgets.report(target, caps)
        if target is None:
            title = t(language, "usage.title_all")
        elif target == itx.guild_id:
            title = t(language, "usage.title_server")
        else:
            title = t(language, "usage.title_one", guild=target)
        chart = await asyncio.to_thread(
            usage_chart,
            report.daily,
            title=title,
            subtitle=t(language, "usage.chart_title"),
            language=language,
        )
        people = await self.bot.accounts.by_ids(str(g.key[0]) for g in report.top_members)
        members = {user_id: user.discord_id for user_id, user in people.items()}
        embed = usage_embed(
            language, report, title, members=members,
            host_budget=self.bot.permissions.sees_host_budget(actor),
            model_name=self.bot.generation.catalog.name_of,
        )  # fmt: skip
        alt = t(language, "usage.chart_alt", title=title, period=t(language, "usage.chart_title"))
        await reply(
            itx,
            embed=embed,
            file=discord.File(io.BytesIO(chart), filename=CHART_NAME, description=alt),
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(UsageCog(bot))
