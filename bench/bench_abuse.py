"""Fair under abuse: each abuse scenario against the bot alone in its own process, beside a
no-abuse baseline in the same run. Prints figures beside their aims; asserts nothing on time.

    python -m bench.bench_abuse [--latency 0.5] [--image-size 2048] [--innocents 10] [--quick]

The bot runs as in production (default settings: rate limits, image pool, queue), in its own
process (`bench.bot_process`); the fake Discord runs here and the fake API (L = 0.5 s, 2048²
answers) in a process of its own. In every scenario, innocent members do what members do
(`/coins`, their own `/gallery`, one `/generate` each, a few seconds apart) while the abusers
act; the figures:

- innocents' acknowledgement p99 (INTERACTION_CREATE sent -> first answer received), beside
  the baseline's (no abuse) of the same run: aim < 2x the baseline and < 300 ms;
- interactions of anyone answered after Discord's 3 s (or never): aim 0;
- the bot process's peak RSS during the scenario: aim < 500 MB (its image pool's processes
  shown apart);
- what the abuse got through (answered, refused "slow down", "busy", charged).

Scenarios (the issue's table): 200 `/gallery` at once from 20 members; 200 gallery Previous
clicks at once; 20 `/generate` each with two ~20 MP attachments; 50 "open image" picks of a
20 MP upload; Reroll clicked 50 times in 1 s, then 10 times a second for 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from bench.bench_bot import tiles
from bench.common import percentile
from bench.harness import (
    BotHandle,
    ProcessSampler,
    base_settings,
    fake_api,
    machine_load,
    running,
)
from bot import runtime
from storage.sqlite import SQLiteDatabase
from storage.timeutil import to_iso, utcnow
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeMessage, FakeUser
from tests.fakes.discord_server import InteractionRecord as Rec

DEADLINE = 3.0
IMAGES_EACH = 30  # every member's gallery: four pages of nine


def ms(seconds: float) -> float:
    return seconds * 1000


@dataclass(frozen=True)
class Config:
    latency: float
    image_size: int
    innocents: int
    quick: bool


@dataclass
class Figures:
    name: str
    innocent_p50_ms: float = math.nan
    innocent_p99_ms: float = math.nan
    late: int = 0
    interactions: int = 0
    rss_peak_mib: float = math.nan
    pool_rss_peak_mib: float = math.nan
    abuse: str = ""


# ------------------------------------------------------------------------------ the world


def big_photo(width: int = 5472, height: int = 3648) -> bytes:
    """A ~20 MP JPEG that compresses like a photo (a few MiB to ~10 MiB)."""
    gradient = PILImage.linear_gradient("L")
    noise = PILImage.effect_noise((width, height), 40)
    image = PILImage.merge(
        "RGB",
        (gradient.resize((width, height)), noise, gradient.rotate(90).resize((width, height))),
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


async def seed(folder: Path, members: Sequence[FakeUser], guild_id: int, photo: bytes) -> None:
    """Every member with IMAGES_EACH finished images in the server (their wallets are made
    by the bot on first use); the first member's newest image is the 20 MP photo."""
    database = SQLiteDatabase(folder / "bot.db")
    await database.connect()
    await database.migrate()
    await database.close()
    objects = folder / "objects"
    keys = []
    for n, (png, small) in enumerate(tiles()):
        for key, data in ((f"images/seed/{n}.png", png), (f"thumbnails/seed/{n}.webp", small)):
            (objects / key).parent.mkdir(parents=True, exist_ok=True)
            (objects / key).write_bytes(data)
        keys.append((f"images/seed/{n}.png", f"thumbnails/seed/{n}.webp"))
    (objects / "images/seed/photo.jpg").write_bytes(photo)
    now = utcnow()
    conn = sqlite3.connect(folder / "bot.db")
    try:
        for index, member in enumerate(members):
            user_id = str(uuid.uuid4())
            stamp = to_iso(now)
            conn.execute(
                "INSERT INTO users (id, discord_id, display_name, roles, language, created_at, "
                "updated_at) VALUES (?, ?, ?, '[\"USER\"]', 'en', ?, ?)",
                (user_id, str(member.id), member.username, stamp, stamp),
            )
            for i in range(IMAGES_EACH):
                created = to_iso(now - timedelta(minutes=IMAGES_EACH - i))
                key, thumb_key = keys[i % len(keys)]
                thumb: str | None = thumb_key
                meta: dict[str, Any] = {"mime_type": "image/png", "width": 320, "height": 320}
                if index == 0 and i == IMAGES_EACH - 1:
                    key, thumb = "images/seed/photo.jpg", None
                    meta = {"mime_type": "image/jpeg", "width": 5472, "height": 3648}
                conn.execute(
                    "INSERT INTO images (id, user_id, guild_id, type, status, prompt, "
                    "storage_key, thumbnail_key, metadata, coins_used, created_at, updated_at) "
                    "VALUES (?, ?, ?, 'GENERATED', 'COMPLETED', ?, ?, ?, ?, 0, ?, ?)",
                    (str(uuid.uuid4()), user_id, str(guild_id), f"picture {i}", key, thumb,
                     json.dumps(meta), created, created),
                )  # fmt: skip
            conn.execute(
                "INSERT INTO gallery_counts (user_id, guild_id, type, count) "
                "VALUES (?, ?, 'GENERATED', ?)",
                (user_id, str(guild_id), IMAGES_EACH),
            )
        conn.commit()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ measuring


def answered(rec: Rec) -> bool:
    return bool(rec.callbacks) or rec.expired


def finished(rec: Rec) -> bool:
    """A /generate's outcome is known: refused (at once or after its answer), or shown."""
    original = rec.original
    if rec.expired or (original is not None and (original.ephemeral or original.deleted)):
        return True
    return original is not None and any(n.startswith("nanobanana-") for n in original.filenames)


def late(rec: Rec) -> bool:
    """Answered after Discord's 3 s, or not at all (what a member sees as a failure)."""
    ack = rec.ack_latency
    return rec.expired or ack is None or ack > DEADLINE


async def settle(bot: BotHandle, recs: Sequence[Rec]) -> None:
    """Every interaction answered (or expired), then every job finished, so that scenarios
    don't overlap."""
    await asyncio.gather(*(r.wait_for(answered, timeout=120) for r in recs))
    for _ in range(1200):
        stats = await bot.stats()
        if not stats["jobs_running"] and not stats["jobs_waiting"]:
            return
        await asyncio.sleep(0.1)


async def innocent_traffic(fake: FakeDiscord, innocents: Sequence[FakeUser]) -> list[Rec]:
    """What members do: /coins, their own /gallery, one /generate each, spread out."""

    async def member(user: FakeUser, delay: float) -> list[Rec]:
        await asyncio.sleep(delay)
        recs = []
        for command, options in (
            ("coins", {}),
            ("gallery", {}),
            ("generate", {"prompt": f"a cat for {user.username}"}),
        ):
            recs.append(await fake.slash(command, options, user=user))
            await asyncio.sleep(0.4)
        return recs

    groups = await asyncio.gather(*(member(user, 0.1 * n) for n, user in enumerate(innocents)))
    return [rec for group in groups for rec in group]


def summary(recs: Sequence[Rec]) -> str:
    """How the abusers' interactions were answered."""
    kinds = {"refused (slow down)": 0, "busy": 0, "answered": 0, "late": 0}
    for rec in recs:
        if late(rec):
            kinds["late"] += 1
            continue
        text = json.dumps(rec.callbacks[0].data) if rec.callbacks else ""
        followups = " ".join(m.content for m in rec.followups)
        if "Slow down" in text or "Slow down" in followups:
            kinds["refused (slow down)"] += 1
        elif "busy" in text or "busy" in followups:
            kinds["busy"] += 1
        elif rec.original is not None and rec.original.deleted and followups:
            # Refused after the first answer (the job's message replaced privately).
            reason = f"refused after answering ({followups[:60]}...)"
            kinds[reason] = kinds.get(reason, 0) + 1
        else:
            kinds["answered"] += 1
    return ", ".join(f"{v} {k}" for k, v in kinds.items() if v)


Abuse = Callable[[], Coroutine[Any, Any, tuple[list[Rec], str]]]


async def run_scenario(
    name: str, fake: FakeDiscord, bot: BotHandle, innocents: Sequence[FakeUser],
    abuse: Abuse | None,
) -> Figures:  # fmt: skip
    figures = Figures(name)
    with ProcessSampler(bot.pid) as sampler:
        abuse_task: asyncio.Task[tuple[list[Rec], str]] | None = None
        if abuse is not None:
            abuse_task = asyncio.ensure_future(abuse())
        await asyncio.sleep(0.05)  # the abuse lands first
        mine = await innocent_traffic(fake, innocents)
        theirs, extra = await abuse_task if abuse_task is not None else ([], "")
        await settle(bot, [*mine, *theirs])
    acks = [r.ack_latency for r in mine if r.ack_latency is not None]
    figures.innocent_p50_ms = ms(percentile(acks, 50))
    figures.innocent_p99_ms = ms(percentile(acks, 99))
    everyone = [*mine, *theirs]
    figures.interactions = len(everyone)
    figures.late = sum(1 for r in everyone if late(r))
    figures.rss_peak_mib = sampler.peak_mib
    figures.pool_rss_peak_mib = sampler.peak_children_mib
    figures.abuse = "; ".join(p for p in (summary(theirs), extra) if p)
    return figures


# ------------------------------------------------------------------------------ scenarios


async def open_gallery(fake: FakeDiscord, user: FakeUser) -> FakeMessage:
    """A member's gallery message for a scenario's set-up (asking again while the image pool
    says it is busy: the scenario before may still be finishing its image work)."""
    for _ in range(30):
        rec = await fake.slash("gallery", {}, user=user)
        message = await rec.wait_original(lambda m: bool(m.content or m.filenames), timeout=60)
        if message.filenames:
            return message
        await asyncio.sleep(1.0)
    raise RuntimeError(f"{user.username}'s gallery stayed busy")


def charged(db_path: Path, user: FakeUser) -> int:
    """Generation debits of a member so far (read from the bot's database)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM coin_transactions t JOIN users u ON u.id = t.user_id "
            "WHERE u.discord_id = ? AND t.kind = 'GENERATION'",
            (str(user.id),),
        ).fetchone()
    return int(row[0])


def has_image(message: FakeMessage | None) -> bool:
    return message is not None and any(n.startswith("nanobanana-") for n in message.filenames)


async def run(config: Config) -> tuple[list[Figures], dict[str, Any]]:
    host: dict[str, Any] = {"load_before": machine_load()}
    found: list[Figures] = []
    photo = big_photo()
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as temp:
        folder = Path(temp)
        async with (
            FakeDiscord() as fake,
            fake_api(latency=config.latency, image_size=config.image_size,
                     in_process=False) as api,
        ):  # fmt: skip
            guild: FakeGuild = fake.add_guild("Abuse Guild")

            def people(prefix: str, count: int) -> list[FakeUser]:
                return [fake.add_user(f"{prefix}{n:02d}", guilds=[guild]) for n in range(count)]

            rounds = ["baseline", "gallery", "previous", "attachments", "open", "reroll"]
            innocents = {r: people(f"inn-{r}-", config.innocents) for r in rounds}
            gallery_abusers = people("gal", 20)
            paging_abusers = people("page", 20)
            attach_abusers = people("att", 2)
            opener = people("open", 1)[0]
            roller = people("roll", 1)[0]
            everyone = [opener, *gallery_abusers, *paging_abusers, *attach_abusers, roller,
                        *(u for group in innocents.values() for u in group)]  # fmt: skip
            await seed(folder, everyone, guild.id, photo)
            settings = base_settings(folder, fake, api.base_url, guild.id)
            settings["starter_coins"] = 10_000
            async with running(fake, settings, in_process=False) as bot:
                found.append(await run_scenario("no abuse (baseline)", fake, bot,
                                                innocents["baseline"], None))  # fmt: skip

                async def galleries() -> tuple[list[Rec], str]:
                    recs = await asyncio.gather(
                        *(fake.slash("gallery", {}, user=gallery_abusers[n % 20])
                          for n in range(200))
                    )  # fmt: skip
                    return list(recs), ""

                found.append(await run_scenario("200 /gallery at once from 20 members", fake,
                                                bot, innocents["gallery"], galleries))  # fmt: skip

                # Each paging abuser opens their gallery and goes to page 2 (before the clock).
                pages: list[FakeMessage] = []
                for user in paging_abusers:
                    message = await open_gallery(fake, user)
                    click = await fake.click(message, label="Next", user=user)
                    await click.wait_for(lambda r: bool(r.edits), timeout=60)
                    pages.append(message)

                async def previous() -> tuple[list[Rec], str]:
                    recs = await asyncio.gather(
                        *(fake.click(pages[n % 20], label="Previous", user=paging_abusers[n % 20])
                          for n in range(200))
                    )  # fmt: skip
                    return list(recs), ""

                found.append(await run_scenario("200 gallery Previous clicks at once", fake,
                                                bot, innocents["previous"], previous))  # fmt: skip

                async def attachments() -> tuple[list[Rec], str]:
                    def file() -> Any:
                        return fake.upload(photo, "photo.jpg", width=5472, height=3648)

                    recs = await asyncio.gather(
                        *(fake.slash("generate", {"prompt": f"edit {n}", "image": file(),
                                                  "image2": file()},
                                     user=attach_abusers[n % 2])
                          for n in range(20))
                    )  # fmt: skip
                    await asyncio.gather(*(r.wait_for(finished, timeout=180) for r in recs))
                    await settle(bot, recs)
                    made = sum(charged(folder / "bot.db", u) for u in attach_abusers)
                    return list(recs), f"{made} charged; attachments {len(photo) / 2**20:.1f} MiB"

                found.append(await run_scenario(
                    "20 /generate with two ~20 MP attachments each", fake, bot,
                    innocents["attachments"], attachments))  # fmt: skip

                # The opener's gallery, with its newest image the 20 MP photo.
                sheet = await open_gallery(fake, opener)
                select = sheet.selects()[0]
                photo_id = select["options"][0]["value"]

                async def opens() -> tuple[list[Rec], str]:
                    recs = await asyncio.gather(
                        *(fake.select(sheet, select["custom_id"], [photo_id], user=opener)
                          for _ in range(50))
                    )  # fmt: skip
                    return list(recs), ""

                found.append(await run_scenario("50 'open image' picks of a 20 MP upload",
                                                fake, bot, innocents["open"], opens))  # fmt: skip

                first = await fake.slash("generate", {"prompt": "a rocket"}, user=roller)
                result = await first.wait_original(has_image, timeout=120)
                await settle(bot, [first])
                before = charged(folder / "bot.db", roller)

                async def rerolls() -> tuple[list[Rec], str]:
                    recs = list(
                        await asyncio.gather(
                            *(fake.click(result, label="Reroll", user=roller) for _ in range(50))
                        )
                    )
                    # Charged once answered and reserved (the reservation follows the answer).
                    await asyncio.gather(*(r.wait_for(answered, timeout=60) for r in recs))
                    await asyncio.sleep(0.5)
                    burst = charged(folder / "bot.db", roller) - before
                    for _ in range(10):  # then 10 a second for 10 s
                        recs += await asyncio.gather(
                            *(fake.click(result, label="Reroll", user=roller) for _ in range(10))
                        )
                        await asyncio.sleep(1.0)
                    await asyncio.gather(*(r.wait_for(answered, timeout=60) for r in recs))
                    total = charged(folder / "bot.db", roller) - before
                    return recs, f"{burst} charged in the 1 s burst, {total} in all 11 s"

                found.append(await run_scenario("Reroll 50 in 1 s, then 10/s for 10 s", fake,
                                                bot, innocents["reroll"], rerolls))  # fmt: skip
            host["problems"] = fake.problems()
    host["load_after"] = machine_load()
    return found, host


# ------------------------------------------------------------------------------ output


def fmt(value: float, digits: int = 0) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def print_report(found: list[Figures], host: dict[str, Any], config: Config) -> None:
    print("Abuse benchmark: the bot alone in its own process (default limits), fake Discord in "
          "the driver, fake API in its own process")  # fmt: skip
    print(f"L={config.latency:g}s, answers {config.image_size}², {config.innocents} innocent "
          f"members per scenario; load average before: {host['load_before']}, after: "
          f"{host['load_after']}\n")  # fmt: skip
    base = found[0].innocent_p99_ms
    header = (f"{'scenario':<46}{'innocents p50/p99 ms':>22}{'x base':>8}"
              f"{'late (>3 s)':>13}{'RSS MiB (pool)':>17}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for f in found:
        ratio = f.innocent_p99_ms / base if base and not math.isnan(base) else math.nan
        p = f"{fmt(f.innocent_p50_ms)} / {fmt(f.innocent_p99_ms)}"
        rss = f"{fmt(f.rss_peak_mib)} ({fmt(f.pool_rss_peak_mib)})"
        print(f"{f.name:<46}{p:>22}{fmt(ratio, 2):>8}{f'{f.late} of {f.interactions}':>13}"
              f"{rss:>17}")  # fmt: skip
    print("\naims: innocents' p99 < 2x baseline and < 300 ms; late 0; RSS < 500 MB\n")
    for f in found[1:]:
        ratio = f.innocent_p99_ms / base if base else math.nan
        met = [
            ("p99 < 2x", ratio < 2),
            ("p99 < 300 ms", f.innocent_p99_ms < 300),
            ("late 0", f.late == 0),
            ("RSS < 500", f.rss_peak_mib < 500),
        ]
        verdict = ", ".join(f"{label} {'met' if ok else 'MISSED'}" for label, ok in met)
        print(f"{f.name}: {verdict}\n    abusers: {f.abuse}")
    problems = host.get("problems") or []
    if problems:
        print(f"\n{len(problems)} request(s) real Discord would refuse:")
        for problem in problems[:20]:
            print(f"  {problem}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--image-size", type=int, default=2048)
    parser.add_argument("--innocents", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smaller answers (a smoke run)")
    args = parser.parse_args(argv)
    config = Config(args.latency, 512 if args.quick else args.image_size, args.innocents,
                    args.quick)  # fmt: skip
    started = time.perf_counter()
    found, host = runtime.run(lambda: run(config))
    print_report(found, host, config)
    print(f"\nTotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
