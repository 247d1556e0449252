"""Text with images (issue 22 item 6): what a model says beside its image reaches the member,
in the result's embed, trimmed to Discord's limits, and is kept with the image."""

from __future__ import annotations

from tests.cogs.conftest import Harness
from tests.cogs.test_generate import has_image
from tests.fakes.nanobanana_server import Behaviour, Mode


async def test_the_models_words_beside_its_image_are_shown_and_kept(harness: Harness) -> None:
    h = harness
    h.api.script([Behaviour(Mode.OK, text="Here is your astronaut, helmet polished.")])
    rec = await h.fake.slash("generate", {"prompt": "a banana astronaut"}, user=h.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await h.settle()
    # The request asks for text beside the image (with ["IMAGE"] alone Google drops it).
    assert h.api.requests[0].json["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    description = message.embeds[0]["description"]
    assert description.startswith("a banana astronaut")
    assert "The model says:* Here is your astronaut, helmet polished." in description
    (image,) = (await h.app.image_repo.list_by_user(await h.user_id(h.alice))).items
    assert image.metadata["text"] == "Here is your astronaut, helmet polished."
    # The gallery shows it too.
    rec = await h.fake.slash("gallery", {"image": image.short_id}, user=h.alice)
    shown = await rec.wait_original(lambda m: bool(m.embeds), timeout=10)
    assert "helmet polished" in shown.embed_text()


async def test_a_long_answer_is_trimmed_within_discords_limits(harness: Harness) -> None:
    h = harness
    h.api.script([Behaviour(Mode.OK, text="word " * 2000)])
    prompt = "p" * 200  # the harness's longest prompt
    rec = await h.fake.slash("generate", {"prompt": prompt}, user=h.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await h.settle()
    description = message.embeds[0]["description"]
    assert len(description) <= 4096 and description.startswith(prompt)
    assert description.endswith("…") and "The model says" in description
    assert h.fake.take_invalid() == []  # the fake checks every embed against the spec


async def test_no_text_no_quote(harness: Harness) -> None:
    h = harness
    rec = await h.fake.slash("generate", {"prompt": "a plain fox"}, user=h.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await h.settle()
    assert message.embeds[0]["description"] == "a plain fox"
