"""Budgets end to end: a server's daily image cap and monthly USD cap, the deployment's
MONTHLY_BUDGET_USD, each refused before any coin moves with the reset time, notices at 80% and
100% told once, a concurrent burst at the edge of a cap, the reset at the period boundary on a
fixed clock, and bad cap values refused."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cogs.conftest import Harness, make_harness, outcome
from tests.fakes.discord_server import FakeMessage, FakeUser
from tests.fakes.nanobanana_server import Mode
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


class Clock:
    """A fixed clock the test moves by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


async def settings(harness: Harness, sub: str, options: Mapping[str, object], **kw: object) -> str:
    kw.setdefault("user", harness.mod)
    rec = await harness.fake.slash(f"settings {sub}", options, **kw)  # type: ignore[arg-type]
    message = await rec.wait_original()
    assert message.ephemeral, message
    return message.content + message.embed_text()


async def generate(harness: Harness, user: FakeUser, prompt: str = "a banana") -> FakeMessage:
    """A /generate and its first visible outcome: the image, or a private refusal."""
    rec = await harness.fake.slash("generate", {"prompt": prompt}, user=user)
    message = await outcome(rec)
    await harness.settle()  # an image is shown first and stored meanwhile
    return message


def fixed_clock(harness: Harness, moment: datetime) -> Clock:
    clock = Clock(moment)
    harness.app.budgets.clock = clock
    return clock


async def usage_rows(harness: Harness, status: str | None = None) -> int:
    sql = "SELECT COUNT(*) FROM generation_usage"
    if status:
        return int(await harness.app.db.fetchval(sql + " WHERE status = ?", (status,)))
    return int(await harness.app.db.fetchval(sql))


async def test_daily_image_cap_refuses_before_charge_tells_once_and_resets(
    harness: Harness,
) -> None:
    log = harness.fake.add_channel(harness.guild, "mod-log")
    await settings(harness, "set", {"setting": "mod_log_channel_id", "value": f"<#{log.id}>"})
    text = await settings(harness, "set", {"setting": "daily_image_cap", "value": "5"})
    assert "Images per day (server) is now 5" in text
    clock = fixed_clock(harness, datetime(2026, 3, 14, 22, 0, tzinfo=UTC))
    await (await harness.fake.slash("coins", {}, user=harness.owner2)).wait_original()
    for n in range(5):
        user = harness.alice if n % 2 == 0 else harness.bob
        assert has_image(await generate(harness, user, f"picture {n}"))
    before = await harness.counts()
    refused = await generate(harness, harness.owner2, "one too many")
    assert refused.ephemeral and "made its 5 images for today" in refused.content
    reset = int(datetime(2026, 3, 15, tzinfo=UTC).timestamp())
    assert f"<t:{reset}:R>" in refused.content and "No coins were taken" in refused.content
    assert await harness.counts() == before  # no coin, row or object
    assert await usage_rows(harness) == 5
    assert await harness.balance(harness.owner2) == 300
    # Told once at 80% (4 of 5) and once at 100%, in the log channel, however often refused.
    again = await generate(harness, harness.owner2, "and another")
    assert "made its 5 images for today" in again.content

    def notices() -> list[str]:
        return [m.content for m in harness.fake.channel_messages(log) if "5 images" in m.content]

    await harness.fake.wait_for(lambda: len(notices()) >= 2)
    await asyncio.sleep(0.2)  # a third notice would have arrived by now
    assert len(notices()) == 2
    assert "made 4 of its 5 images for today (80%)" in notices()[0]
    assert "(100%)" in notices()[1] and "refused until then" in notices()[1]
    # Past midnight UTC the count starts again.
    clock.moment += timedelta(hours=2, minutes=1)
    assert has_image(await generate(harness, harness.bob, "a new day"))
    await assert_ledger_consistent(harness.app.db)


async def test_monthly_server_budget_holds_under_a_concurrent_burst_and_resets(
    harness: Harness,
) -> None:
    fake = harness.fake
    model = harness.app.models.catalog.default_model
    assert model == "gemini-nano-banana-2.1"
    estimate = harness.app.budgets.prices.estimate(model, "1K", prompt_chars=7)
    # $0.0336 an image plus an allowance for its thoughts and a sliver for the prompt.
    assert 37_000 < estimate < 38_000
    # Room for three images' estimates, not four.
    await settings(harness, "set", {"setting": "monthly_budget_usd", "value": "$0.12"})
    clock = fixed_clock(harness, datetime(2026, 1, 31, 23, 30, tzinfo=UTC))
    members = [fake.add_user(f"burst{n}", guilds=[harness.guild]) for n in range(6)]
    for member in members:  # accounts first, so the burst itself creates nothing but jobs
        await (await fake.slash("coins", {}, user=member)).wait_original()
    harness.api.latency = 0.3  # all six arrive while the first ones are still running
    records = await asyncio.gather(
        *(fake.slash("generate", {"prompt": "burst 1"}, user=m) for m in members)
    )
    outcomes = await asyncio.gather(*(outcome(r, timeout=20) for r in records))
    made = [m for m in outcomes if has_image(m)]
    refused = [m for m in outcomes if "monthly image budget" in m.content]
    assert len(made) == 3 and len(refused) == 3
    reset = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
    assert all(f"<t:{reset}:R>" in m.content for m in refused)
    balances = sorted([await harness.balance(m) for m in members])
    assert balances == [200, 200, 200, 300, 300, 300]  # the refused paid nothing
    spent = int(
        await harness.app.db.fetchval(
            "SELECT SUM(cost_micros) FROM generation_usage WHERE status = 'BILLED'"
        )
    )
    assert spent <= 120_000
    # No log channel: the owner is told in DMs, once at 80% and once at 100%.
    owner = fake.owner

    def dms() -> list[str]:
        return [m.content for m in fake.dm_messages(owner) if "monthly image budget" in m.content]

    await fake.wait_for(lambda: len(dms()) >= 2)
    # Three estimates held at once (the six arrive together): 3 x $0.0374 of $0.12.
    assert "used 93% of its monthly image budget ($0.112 of $0.120)" in dms()[0]
    assert "used 100% of its monthly image budget" in dms()[1]
    # February: a new budget.
    clock.moment = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)
    assert has_image(await generate(harness, members[-1], "february"))
    await assert_ledger_consistent(harness.app.db)


async def test_deployment_budget_spans_servers_and_restarts_and_tells_bot_admins(
    harness: Harness,
) -> None:
    await harness.stop_bot()
    # $0.08: two Nano Banana 2.1 images (about $0.035 each, $0.037 held before), not three.
    await harness.start_bot(monthly_budget_usd="0.08", admin_user_ids=[harness.bob.id])
    clock = fixed_clock(harness, datetime(2026, 5, 20, 12, tzinfo=UTC))
    assert has_image(await generate(harness, harness.alice, "in banana club"))
    rec = await harness.fake.slash("generate", {"prompt": "elsewhere"}, user=harness.alice,
                                   guild=harness.other)  # fmt: skip
    assert has_image(await outcome(rec))
    refused = await generate(harness, harness.alice, "one more")
    assert "This bot has reached its monthly image budget" in refused.content
    # Across a restart the month's spend is still counted: it lives in the database.
    await harness.stop_bot()
    await harness.start_bot(monthly_budget_usd="0.08", admin_user_ids=[harness.bob.id])
    harness.app.budgets.clock = clock
    refused = await generate(harness, harness.alice, "after the restart")
    assert "This bot has reached its monthly image budget" in refused.content
    assert await harness.balance(harness.alice) == 200

    def admin_dms() -> list[str]:
        return [
            m.content
            for m in harness.fake.dm_messages(harness.bob)
            if "MONTHLY_BUDGET" in m.content
        ]

    await harness.fake.wait_for(lambda: len(admin_dms()) >= 2)
    assert len(admin_dms()) == 2  # 80% once, 100% once (not again after the restart)
    # The first image billed ($0.035) and the second's estimate held ($0.037).
    assert "used 90% of its monthly budget (MONTHLY_BUDGET_USD: $0.073 of $0.080)" in admin_dms()[0]
    assert "100%" in admin_dms()[1] and "refused until then" in admin_dms()[1]


@pytest.mark.parametrize(
    ("setting", "value", "phrase"),
    [
        ("daily_image_cap", "-1", "from 0 to 100000"),
        ("daily_image_cap", "ten", "isn't a whole number"),
        ("daily_image_cap", "1e9", "isn't a whole number"),
        ("daily_image_cap", "99999999999999999999999999999", "from 0 to 100000"),
        ("monthly_budget_usd", "-5", "from $0 to $100,000"),
        ("monthly_budget_usd", "$-5", "from $0 to $100,000"),
        ("monthly_budget_usd", "abc", "isn't a dollar amount"),
        ("monthly_budget_usd", "NaN", "isn't a dollar amount"),
        ("monthly_budget_usd", "1e3", "isn't a dollar amount"),
        ("monthly_budget_usd", "100000.01", "from $0 to $100,000"),
        ("monthly_budget_usd", "1" * 40, "isn't a dollar amount"),
    ],
)
async def test_bad_caps_are_refused_and_change_nothing(
    harness: Harness, setting: str, value: str, phrase: str
) -> None:
    await settings(harness, "show", {})
    before = await harness.counts()
    text = await settings(harness, "set", {"setting": setting, "value": value})
    assert phrase in text
    assert await harness.counts() == before


async def test_a_call_sent_and_never_answered_still_counts_against_the_budgets(
    tmp_path: Path,
) -> None:
    """Google may make, and bill, an image whose answer never reaches the bot (a timeout or a
    dropped connection after the request was sent): the member is refunded all the same, and
    the budgets keep the job's estimated cost, so they never under-count what Google bills. An
    error answer (503) is not billed: its estimate stops counting."""
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, nanobanana_timeout=0.5)
        before = await h.balance(h.alice)
        h.api.hang_seconds = 5
        h.api.default = Mode.HANG
        await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice)

        async def statuses() -> list[tuple[str, int, int]]:
            rows = await h.app.db.fetchall(
                "SELECT status, cost_micros, estimate_micros FROM generation_usage "
                "ORDER BY created_at"
            )
            return [(str(r[0]), int(r[1] or 0), int(r[2] or 0)) for r in rows]

        async def settled(count: int) -> bool:
            found = await statuses()
            return len(found) == count and all(s != "RESERVED" for s, _, _ in found)

        await until(lambda: settled(1), timeout=15)
        ((status, cost, estimate),) = await statuses()
        assert status == "BILLED" and cost == estimate > 0
        h.api.default = Mode.UNAVAILABLE
        await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice)
        await until(lambda: settled(2), timeout=15)
        assert (await statuses())[1][0] == "VOID"
        await h.settle()
        assert await h.balance(h.alice) == before  # both refunded, once each
        await assert_ledger_consistent(h.app.db)
