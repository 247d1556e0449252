"""Issue 19 end to end, through the fake Discord and a fake Gemini serving today's lineup: a
fresh clone's defaults make images, a model Google retires while the bot runs (auto and
pinned), a retired preview id in `.env`, and the owner told once, wherever they look."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.app import NanoBananaBot
from bot.config import load_settings
from tests.cogs.conftest import Harness, outcome, refusal
from tests.cogs.test_generate import has_image
from tests.fakes.discord_server import FakeDiscord, running_bot
from tests.fakes.nanobanana_server import MODELS, FakeNanobanana
from tests.storage.helpers import assert_ledger_consistent

ROOT = Path(__file__).resolve().parents[2]
NB21 = "gemini-nano-banana-2.1"
NB2 = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"


async def test_a_fresh_clone_with_env_example_makes_images_against_todays_lineup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's quick start: `cp .env.example .env`, set the token and the key, `make run`."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    for name in list(os.environ):
        if name.startswith(("DISCORD", "GEMINI", "NANOBANANA", "DATABASE", "LOCAL_STORAGE")):
            monkeypatch.delenv(name)
    async with FakeDiscord() as fake, FakeNanobanana(image_size=256) as api:
        # What the owner fills in; and where "Google" and the web port are, for the test only.
        monkeypatch.setenv("DISCORD_TOKEN", "fake-bot-token")
        monkeypatch.setenv("GEMINI_API_KEY", "an-owners-key")
        monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
        monkeypatch.setenv("WEB_PORT", "0")
        settings = load_settings()
        assert settings.nanobanana_model == "auto" and settings.nanobanana_models == []
        guild = fake.add_guild("Fresh Clone")
        alice = fake.add_user("alice", guilds=[guild])
        monkeypatch.setenv("DISCORD_GUILD_IDS", str(guild.id))
        settings = load_settings()
        bot = NanoBananaBot(settings, guild_ready_timeout=0)
        async with running_bot(fake, bot):
            rec = await fake.slash("generate", {"prompt": "a banana"}, user=alice)
            message = await outcome(rec)
            assert has_image(message), message.content
            await bot.generation.wait_idle()
        assert [r.model for r in api.requests] == [NB21]
        assert (tmp_path / "data" / "bot.db").is_file()
    # The default this release replaced: today's Gemini answers it 404, as it does Pro's
    # preview that an older .env may name.
    assert api.served("gemini-2.5-flash-image") is None
    assert api.served("gemini-3-pro-image-preview") is None


async def log_channel(harness: Harness) -> int:
    channel = harness.fake.add_channel(harness.guild, "mod-log")
    rec = await harness.fake.slash(
        "settings set", {"setting": "mod_log_channel_id", "value": f"<#{channel.id}>"},
        user=harness.mod,
    )  # fmt: skip
    await rec.wait_original()
    return channel.id


def notices(harness: Harness, channel_id: int, phrase: str) -> tuple[list[str], list[str]]:
    dms = [m.content for m in harness.fake.dm_messages(harness.bob) if phrase in m.content]
    posts = [m.content for m in harness.fake.channel_messages(channel_id) if phrase in m.content]
    return dms, posts


async def test_auto_a_model_retired_while_running_moves_on_and_the_owner_is_told(
    harness: Harness,
) -> None:
    await harness.stop_bot()
    await harness.start_bot(admin_user_ids=[harness.bob.id])
    channel = await log_channel(harness)
    harness.api.retire(NB21)
    first = await outcome(await harness.fake.slash("generate", {"prompt": "one"},
                                                   user=harness.alice))  # fmt: skip
    assert has_image(first)  # the job that met the 404 was moved to the successor, same price
    await harness.settle()
    second = await outcome(await harness.fake.slash("generate", {"prompt": "two"},
                                                    user=harness.alice))  # fmt: skip
    assert has_image(second)
    await harness.settle()
    assert [r.model for r in harness.api.requests] == [NB21, NB2, NB2]
    assert await harness.balance(harness.alice) == 100  # two images, charged once each
    phrase = "Google retired the image model Nano Banana 2.1"
    await harness.fake.wait_for(lambda: all(notices(harness, channel, phrase)))
    dms, posts = notices(harness, channel, phrase)
    assert len(dms) == 1 and len(posts) == 1
    assert "The bot now uses Nano Banana 2 (`gemini-3.1-flash-image`)" in dms[0]
    await assert_ledger_consistent(harness.app.db)


async def test_pinned_a_model_retired_while_running_is_refused_free_once_learnt(
    harness: Harness,
) -> None:
    await harness.stop_bot()
    await harness.start_bot(nanobanana_model=PRO, admin_user_ids=[harness.bob.id])
    harness.api.retire(PRO)
    # The first member to meet the 404 is refunded (Google's answer is how anyone learns it).
    rec = await harness.fake.slash("generate", {"prompt": "one"}, user=harness.alice)
    failed = await rec.wait_followup(timeout=10)
    assert "Google retired Nano Banana Pro" in failed.content and "refunded" in failed.content
    # Every later request is refused privately and for free, before any coin moves.
    for user in (harness.alice, harness.alice, harness.bob):
        answer = await refusal(await harness.fake.slash("generate", {"prompt": "again"},
                                                        user=user))  # fmt: skip
        assert "no image model can be used" in answer.content.lower()
        assert "owner has been told" in answer.content and "nothing was charged" in answer.content
    assert len(harness.api.requests) == 1
    assert await harness.balance(harness.alice) == 300 and await harness.balance(harness.bob) == 300
    phrase = "Requests for it are refused, free of charge"
    await harness.fake.wait_for(lambda: bool(notices(harness, 0, phrase)[0]))
    [dm] = notices(harness, 0, phrase)[0]
    assert "Nano Banana Pro (`gemini-3-pro-image`)" in dm
    assert "NANOBANANA_MODEL=auto picks a model the key can use" in dm
    # A restart reads the deployment's record: still refused free, the owner not told twice.
    await harness.stop_bot()
    await harness.start_bot(nanobanana_model=PRO, admin_user_ids=[harness.bob.id])
    answer = await refusal(await harness.fake.slash("generate", {"prompt": "after"},
                                                    user=harness.alice))  # fmt: skip
    assert "nothing was charged" in answer.content
    assert len(notices(harness, 0, phrase)[0]) == 1 and len(harness.api.requests) == 1
    await assert_ledger_consistent(harness.app.db)


async def test_an_env_naming_a_retired_preview_id_keeps_working_on_its_successor(
    harness: Harness,
) -> None:
    await harness.stop_bot()
    old = "gemini-3-pro-image-preview"
    costs = {old: 150, f"{old}:4K": 250}
    await harness.start_bot(nanobanana_model=old, generation_costs=costs,
                            admin_user_ids=[harness.bob.id])  # fmt: skip
    message = await outcome(await harness.fake.slash("generate", {"prompt": "a poster"},
                                                     user=harness.alice))  # fmt: skip
    assert has_image(message)
    await harness.settle()
    assert harness.api.requests[-1].model == PRO
    assert await harness.balance(harness.alice) == 150  # the price set for the old id
    phrase = "which Google shut down on 2026-06-25"
    await harness.fake.wait_for(lambda: bool(notices(harness, 0, phrase)[0]))
    [dm] = notices(harness, 0, phrase)[0]
    assert "Nano Banana Pro (preview) (`gemini-3-pro-image-preview`)" in dm
    assert "uses its successor Nano Banana Pro (`gemini-3-pro-image`)" in dm
    await harness.stop_bot()
    await harness.start_bot(nanobanana_model=old, generation_costs=costs,
                            admin_user_ids=[harness.bob.id])  # fmt: skip
    assert harness.app.models.catalog.default_model == PRO
    assert len(notices(harness, 0, phrase)[0]) == 1  # told once for the deployment


async def test_a_model_released_after_this_version_works_from_the_owners_profiles_file(
    harness: Harness, tmp_path: Path
) -> None:
    harness.api.add_model("gemini-5-flash-image", MODELS[NB21])
    profiles = tmp_path / "models.toml"
    profiles.write_text(
        'preference = ["gemini-5-flash-image", "gemini-nano-banana-2.1"]\n\n'
        '[[model]]\nid = "gemini-5-flash-image"\nname = "Nano Banana 5"\nfamily = "flash"\n'
        'sizes = ["1K", "2K"]\nratios = ["1:1", "16:9"]\n',
        encoding="utf-8",
    )
    await harness.stop_bot()
    await harness.start_bot(nanobanana_model_profiles=profiles)
    catalog = harness.app.models.catalog
    assert catalog.default_model == "gemini-5-flash-image" and catalog.default.origin == "owner"
    rec = await harness.fake.autocomplete(
        "generate", {"prompt": "x", "size": ""}, "size", user=harness.alice, guild=harness.guild
    )
    await rec.wait_for(lambda r: r.choices is not None)
    assert [c["value"] for c in rec.choices or []] == ["1K", "2K"]
    message = await outcome(await harness.fake.slash(
        "generate", {"prompt": "a comet", "aspect_ratio": "16:9", "size": "2K"},
        user=harness.alice,
    ))  # fmt: skip
    assert has_image(message)
    seen = harness.api.requests[-1]
    assert (seen.model, seen.image_size, seen.aspect_ratio) == (
        "gemini-5-flash-image",
        "2K",
        "16:9",
    )
