"""/usage end to end: the figures (today, this month, last month, by model and size, top
members, budgets left) checked against the usage rows and the ledger, the chart present and
readable, who may see what, and bad input. Writes docs/usage-example.png (the README's
screenshot) when UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image as PILImage

from bot.services.pricing import format_usd
from tests.cogs.conftest import Harness
from tests.fakes.discord_server import FakeMessage, FakeUser

ROOT = Path(__file__).resolve().parents[2]


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


async def make(harness: Harness, user: FakeUser, prompt: str, **options: object) -> None:
    rec = await harness.fake.slash("generate", {"prompt": prompt, **options}, user=user)
    assert has_image(await rec.wait_original(lambda m: has_image(m) or m.ephemeral, timeout=15))


async def usage(
    harness: Harness, user: FakeUser, locale: str = "en-US", **options: object
) -> FakeMessage:
    rec = await harness.fake.slash("usage", options, user=user, locale=locale)
    return await rec.wait_original(lambda m: m.ephemeral and not m.loading, timeout=15)


async def money(harness: Harness, where: str, params: tuple[object, ...]) -> tuple[int, int]:
    row = await harness.app.db.fetchone(
        "SELECT COALESCE(SUM(images), 0), COALESCE(SUM(cost_micros), 0) FROM generation_usage "
        f"WHERE status = 'BILLED' AND {where}",
        params,
    )
    assert row is not None
    return int(row[0]), int(row[1])


async def test_usage_figures_match_the_rows_and_the_ledger_with_a_readable_chart(
    harness: Harness,
) -> None:
    await harness.stop_bot()
    await harness.start_bot(
        nanobanana_models=["gemini-3-pro-image"], starter_coins=1000, max_grant=5000
    )
    harness.fake.keep_upload_bytes = True
    guild = str(harness.guild.id)
    clock = Clock(datetime(2026, 2, 20, 10, tzinfo=UTC))
    harness.app.budgets.clock = clock
    await make(harness, harness.alice, "last month")
    clock.moment = datetime(2026, 3, 2, 9, tzinfo=UTC)
    await make(harness, harness.bob, "a pro poster", model="gemini-3-pro-image",
               size="4K")  # fmt: skip
    clock.moment = datetime(2026, 3, 9, 15, tzinfo=UTC)
    await make(harness, harness.alice, "today one")
    await make(harness, harness.alice, "today two", model="gemini-3-pro-image")
    rec = await harness.fake.slash("settings set", {"setting": "monthly_budget_usd",
                                                    "value": "5"}, user=harness.mod)  # fmt: skip
    await rec.wait_original()
    message = await usage(harness, harness.mod)
    text = message.embed_text()
    # Figures, from the usage rows (the API's usageMetadata priced by the table).
    today = await money(harness, "guild_id = ? AND day = ?", (guild, "2026-03-09"))
    month = await money(harness, "guild_id = ? AND month = ?", (guild, "2026-03"))
    last = await money(harness, "guild_id = ? AND month = ?", (guild, "2026-02"))
    assert today[0] == 2 and month[0] == 3 and last[0] == 1
    assert f"Today\n{today[0]} images · {format_usd(today[1])}" in text
    assert f"This month\n{month[0]} images · {format_usd(month[1])}" in text
    assert f"Last month\n{last[0]} image · {format_usd(last[1])}" in text
    # A Pro 4K image is Google's $0.24 plus its prompt and thoughts.
    pro_4k = await money(harness, "image_size = ?", ("4K",))
    assert 240_000 <= pro_4k[1] < 250_000
    assert f"Nano Banana Pro (`gemini-3-pro-image`) · 4K: 1 image · {format_usd(pro_4k[1])}" in text
    # Coins paid, against the ledger (all four jobs were paid from this server's wallets).
    paid = await harness.app.db.fetchval(
        "SELECT -SUM(t.delta) FROM coin_transactions t JOIN wallets w ON w.id = t.wallet_id "
        "WHERE w.guild_id = ? AND t.kind IN ('GENERATION', 'REFUND')",
        (guild,),
    )
    assert paid == 400
    assert "3 images" in text and "300 coins paid" in text and "100 coins paid" in text
    # Top members by cost: bob's one Pro 4K image before alice's two.
    members = text.split("Top members this month\n")[1]
    bob = await money(
        harness, "user_id = ? AND month = ?", (await harness.user_id(harness.bob), "2026-03")
    )
    assert f"1. <@{harness.bob.id}> 1 image · {format_usd(bob[1])}" in members
    assert f"2. <@{harness.alice.id}> 2 images" in members
    # The server's budget left; the host's own budget is not shown to moderators.
    assert f"This server, this month: {format_usd(5_000_000 - month[1])} left of $5.00" in text
    # The chart: a real PNG of the last 30 days.
    assert message.filenames == ["usage.png"]
    chart = message.attachments[0].data
    picture = PILImage.open(io.BytesIO(chart))
    picture.load()
    assert picture.format == "PNG" and picture.size == (1000, 500)
    colours = picture.convert("RGB").getcolors(1_000_000) or []
    assert any(rgb == (0xF5, 0xC4, 0x00) for _, rgb in colours)  # the bars are drawn
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        (ROOT / "docs" / "usage-example.png").write_bytes(chart)


async def test_usage_is_for_moderators_and_bot_admins_see_every_server(
    harness: Harness,
) -> None:
    rec = await harness.fake.slash("usage", {}, user=harness.alice)
    assert "Only this server's moderators" in (await rec.wait_original()).content
    # A moderator of another server sees nothing of this one, nor of all.
    rec = await harness.fake.slash("usage", {"server": "all"}, user=harness.mod)
    assert "Only this server's moderators" in (await rec.wait_original()).content
    rec = await harness.fake.slash("usage", {"server": "Banana"}, user=harness.mod)
    assert "isn't a server id" in (await rec.wait_original()).content
    await make(harness, harness.alice, "here")
    await harness.stop_bot()
    await harness.start_bot(admin_user_ids=[harness.bob.id], monthly_budget_usd="10")
    everything = await usage(harness, harness.bob, server="all")
    text = everything.embed_text()
    assert "Image usage of every server" in text and f"`{harness.guild.id}`: 1 image ·" in text
    assert "Whole bot, this month: $9.96 left of $10.00" in text
    one = await usage(harness, harness.bob, server=str(harness.other.id))
    assert f"Image usage of server {harness.other.id}" in one.embed_text()
    assert "Today\n0 images · $0.00" in one.embed_text()


async def test_usage_in_spanish_has_spanish_months_plurals_and_chart(harness: Harness) -> None:
    """Regression: /uso said "April 2026" and "1 imágenes", and its chart spoke English."""
    harness.app.budgets.clock = Clock(datetime(2026, 3, 9, 15, tzinfo=UTC))
    await make(harness, harness.alice, "one")
    message = await usage(harness, harness.mod, locale="es-ES")
    text = message.embed_text()
    assert "Hoy\n1 imagen · $" in text and "1 imágenes" not in text
    assert "100 monedas pagadas" in text
    assert "Este mes\n1 imagen ·" in text and "El mes pasado\n0 imágenes · $0.00" in text
    assert "precios de lista de Google de diciembre de 2026" in text and "December" not in text
    chart = message.attachments[0]
    assert chart.description is not None and "Últimos 30 días" in chart.description
    english = await usage(harness, harness.mod)
    assert "Today\n1 image · $" in english.embed_text()
    assert "list prices of December 2026" in english.embed_text()
