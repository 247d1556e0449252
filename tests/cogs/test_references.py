"""Up to the model's reference limit (issue 22 item 4): /generate takes as many images as the
chosen model does (14 for Nano Banana 2.1, 2 and Pro; 3 for the old Nano Banana), within
Discord's 25 options a command, each checked like any attachment; more than the chosen model
takes is a private, free refusal before anything is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.cogs.conftest import Harness, png, refusal
from tests.cogs.test_generate import has_image
from tests.cogs.test_generate_models import options_of
from tests.storage.helpers import assert_ledger_consistent

NB21 = "gemini-nano-banana-2.1"
PRO = "gemini-3-pro-image"


def images(harness: Harness, count: int) -> dict[str, object]:
    names = ["image", *(f"image{n}" for n in range(2, count + 1))]
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "white"]
    return {
        name: harness.fake.upload(png(20 + n, 20, colours[n % len(colours)]), f"ref{n}.png")
        for n, name in enumerate(names)
    }


async def test_generate_takes_fourteen_references_on_a_model_that_does(harness: Harness) -> None:
    h = harness
    options = options_of(h, "generate")
    assert [name for name in options if name.startswith("image")] == [
        "image", "image2", *(f"image{n}" for n in range(3, 15))
    ]  # fmt: skip
    assert len(options) <= 25
    assert all(options[f"image{n}"]["type"] == 11 for n in range(3, 15))
    rec = await h.fake.slash("generate", {"prompt": "all of them", **images(h, 14)}, user=h.alice)
    await rec.wait_original(has_image, timeout=15)
    await h.settle()
    (request,) = h.api.requests
    assert len(request.images) == 14
    assert await h.balance(h.alice) == 200
    await assert_ledger_consistent(h.app.db)


async def test_more_references_than_the_chosen_model_takes_is_a_free_refusal(
    harness: Harness, tmp_path: Path
) -> None:
    """Every model Google serves today takes 14: an owner's profile says Nano Banana 2.1
    takes 3 (as the old Nano Banana did), Pro still 14."""
    h = harness
    profiles = tmp_path / "models.toml"
    profiles.write_text(f'[[model]]\nid = "{NB21}"\nmax_reference_images = 3\n', encoding="utf-8")
    await h.stop_bot()
    await h.start_bot(nanobanana_model_profiles=profiles, nanobanana_models=[NB21, PRO])
    await h.payer(h.alice)
    before = await h.counts()
    rec = await h.fake.slash("generate", {"prompt": "four", **images(h, 4)}, user=h.alice)
    answer = await refusal(rec)
    assert answer.ephemeral and "at most 3 images" in answer.content and "has 4" in answer.content
    assert rec.callbacks[0].type == 4  # refused before any answer: nothing downloaded
    assert h.fake.downloads == [] and h.api.requests == []
    assert await h.counts() == before
    # Three go through on that model; four on Pro.
    rec = await h.fake.slash("generate", {"prompt": "three", **images(h, 3)}, user=h.alice)
    await rec.wait_original(has_image, timeout=15)
    rec = await h.fake.slash(
        "generate", {"prompt": "four", "model": PRO, **images(h, 4)}, user=h.alice
    )
    await rec.wait_original(has_image, timeout=15)
    await h.settle()
    assert [len(r.images) for r in h.api.requests] == [3, 4]


async def test_every_reference_is_checked_like_an_attachment(harness: Harness) -> None:
    h = harness
    options = images(h, 5)
    big = h.fake.upload(png(30, 30), "huge.png")
    big.size = 5_000_000  # declared over MAX_UPLOAD_BYTES (1 MB here)
    options["image5"] = big
    before = await h.counts()
    rec = await h.fake.slash("generate", {"prompt": "five", **options}, user=h.alice)
    answer = await refusal(rec)
    assert "huge.png" in answer.content and "Attach a smaller image" in answer.content
    assert await h.counts() == before and h.api.requests == []


def _text(option: dict[str, Any]) -> int:
    """Characters Discord counts toward a command's combined limit: names, descriptions and
    choice names and values, options within."""
    total = len(str(option.get("name", ""))) + len(str(option.get("description", "")))
    for choice in option.get("choices") or []:
        total += len(str(choice["name"])) + len(str(choice["value"]))
    return total + sum(_text(o) for o in option.get("options") or [])


async def test_generate_stays_within_discords_combined_text_limit(harness: Harness) -> None:
    """4000 characters across a command's name, description, options and choices
    (MaximumCombinedCharacters in @sapphire/discord-utilities, citing Discord's docs; checked
    2026-12-07), with fourteen image options, every model and every ratio offered."""
    h = harness
    await h.stop_bot()
    await h.start_bot(nanobanana_models=[NB21, PRO, "gemini-3.1-flash-image"])
    synced = h.fake.commands(h.guild)["generate"]
    assert len(synced["options"]) <= 25
    assert _text(synced) <= 4000
