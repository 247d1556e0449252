"""Discord and the API order paid jobs the same way (bot.services.orders), case by case.

Before issue 21 the two surfaces ordered a job's steps each on their own and drifted: the API
took no "generate" turn, capped input images at 40 MP instead of 25 MP and sent them to the
model full size. Each test here orders the same thing through `/generate` and through
`POST /api/v1/images/generate` and checks that both accept it, or refuse it with the same
message and nothing charged, written or sent to the model.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from PIL import Image as PILImage

from bot.nanobanana import MAX_INPUT_SIDE
from storage.models import TransactionKind
from storage.wallets import WalletRepository
from tests.cogs.conftest import Harness, outcome, png
from tests.cogs.test_blocklist_private import settings
from tests.fakes.discord_server import FakeUser, InteractionRecord
from tests.web.conftest import Web

PATH = "/api/v1/images/generate"


def api_body(prompt: str, image: bytes | None = None, **fields: str) -> dict[str, Any]:
    """The request's body: JSON, or a multipart form when it carries an image."""
    if image is None:
        return {"json": {"prompt": prompt, **fields}}
    return {"data": api_form(prompt, image, **fields)}


def api_form(prompt: str, image: bytes | None = None, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("prompt", prompt)
    for name, value in fields.items():
        form.add_field(name, value)
    if image is not None:
        form.add_field("image", image, filename="in.png", content_type="image/png")
    return form


async def on_discord(
    h: Harness, user: FakeUser, prompt: str, image: bytes | None = None, **options: Any
) -> InteractionRecord:
    values: dict[str, Any] = {"prompt": prompt, **options}
    if image is not None:
        values["image"] = h.fake.upload(image, "in.png")
    return await h.fake.slash("generate", values, user=user)


async def refused_alike(
    web: Web,
    user: FakeUser,
    prompt: str,
    *,
    image: bytes | None = None,
    status: int,
    options: Mapping[str, str] | None = None,
) -> str:
    """Order the same refused job on both surfaces: the API answers `status` with the same
    message Discord shows privately; nothing is charged, written or sent. Returns it."""
    h = web.h
    token = await web.token(user)
    await h.payer(user)
    before, sent = await h.counts(), len(h.api.requests)
    got, body, _ = await web.call(
        "POST", PATH, token, **api_body(prompt, image, **dict(options or {}))
    )
    assert got == status, body
    message = body["error"]["message"]
    answer = await outcome(await on_discord(h, user, prompt, image, **dict(options or {})))
    assert answer.ephemeral and message in answer.content, (message, answer.content)
    assert await h.counts() == before and len(h.api.requests) == sent
    return str(message)


async def test_the_generate_rate_limit_is_one_bucket_at_the_servers_rate(web: Web) -> None:
    """A server's `rate_limits generate=1`: one paid job a minute per member, whichever
    surface orders it (the API used to take no turn at all)."""
    h = web.h
    await settings(h, "set", {"setting": "rate_limits", "value": "generate=1"})
    alice, bob = await web.token(h.alice), await web.token(h.bob)
    await web.call("POST", PATH, alice, json={"prompt": "first"}, expect=202)
    refused = await outcome(await on_discord(h, h.alice, "second"))
    assert refused.ephemeral and "Slow down" in refused.content
    # And the other way round: Discord first, then the API.
    await outcome(await on_discord(h, h.bob, "first"))
    status, body, response = await web.call("POST", PATH, bob, json={"prompt": "second"})
    assert status == 429 and body["error"]["code"] == "error_cooldown"
    assert int(response.headers["Retry-After"]) > 0
    await h.settle()
    assert [r.prompt for r in h.api.requests] == ["first", "first"]


async def test_input_images_over_the_pixel_cap_are_refused_alike(web: Web) -> None:
    """30 MP is over MAX_INPUT_PIXELS (25 MP) on both surfaces (the API allowed 40 MP)."""
    big = png(6000, 5000, "navy")
    message = await refused_alike(web, web.h.alice, "edit this", image=big, status=422)
    assert "6000×5000" in message and "25" in message


async def test_input_images_reach_the_model_shrunk_alike(web: Web) -> None:
    """The one input pipeline: a 3000×1500 image reaches the model at MAX_INPUT_SIDE on its
    long side, byte for byte the same from both surfaces (the API sent it full size)."""
    h = web.h
    source = png(3000, 1500, "teal")
    token = await web.token(h.alice)
    await web.call("POST", PATH, token, data=api_form("a", source), expect=202)
    await outcome(await on_discord(h, h.bob, "a", source))
    await h.settle()
    sent = [request.images for request in h.api.requests]
    assert len(sent) == 2 and all(len(images) == 1 for images in sent)
    (_, from_api), (_, from_discord) = sent[0][0], sent[1][0]
    with PILImage.open(io.BytesIO(from_api)) as shrunk:
        assert max(shrunk.size) == MAX_INPUT_SIDE and shrunk.size[0] == 2 * shrunk.size[1]
    assert hashlib.sha256(from_api).digest() == hashlib.sha256(from_discord).digest()


@pytest.mark.parametrize(
    ("prompt", "options", "status", "words"),
    [
        ("x" * 201, {}, 422, "200"),  # the prompt limit
        ("a fox", {"aspect_ratio": "7:3"}, 422, "7:3"),
    ],
)  # fmt: skip
async def test_bad_requests_are_refused_alike(
    web: Web, prompt: str, options: dict[str, str], status: int, words: str
) -> None:
    message = await refused_alike(web, web.h.alice, prompt, status=status, options=options)
    assert words in message


async def test_the_blocklist_refuses_alike(web: Web) -> None:
    h = web.h
    await settings(h, "blocklist add", {"entry": "banana"})
    message = await refused_alike(web, h.alice, "a BANANA boat", status=422)
    assert "doesn't allow" in message


async def test_a_member_who_cannot_pay_is_refused_alike(web: Web) -> None:
    h = web.h
    payer = await h.payer(h.alice)
    await WalletRepository(h.app.db).debit(payer.wallet_id, 250, kind=TransactionKind.ADJUSTMENT)
    message = await refused_alike(web, h.alice, "a fox", status=402)
    assert "100" in message


async def test_a_servers_role_rule_refuses_alike(web: Web) -> None:
    h = web.h
    role = h.fake.add_role(h.guild, "artists")
    await h.app.guild_settings.repo.change(h.guild.id, "generate_role_id", role.id, actor_id=None)
    await h.app.guild_settings.effective(h.guild.id)  # read again, as /settings would
    message = await refused_alike(web, h.alice, "a fox", status=403)
    assert "artists" in message or "role" in message
