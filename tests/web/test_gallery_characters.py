"""The web gallery shows a server's character library (issue 22 item 5): the visitor's own
characters and the server's shared style sheet, with their first reference image; nobody
else's, and nothing of another server."""

from __future__ import annotations

import re

from bot.services.permissions import Identity
from tests.cogs.conftest import png
from tests.web.conftest import Web, enable_sign_in, page, sign_in


async def save(web: Web, user: object, name: str, *, shared: bool = False) -> str:
    h = web.h
    app = h.app
    identity = Identity(
        user.id, user.username, guild_id=h.guild.id,  # type: ignore[attr-defined]
        channel_id=h.guild.default_channel.id, can_manage_guild=shared,
    )  # fmt: skip
    actor = await app.accounts.actor(identity, create=True)
    images = [await app.inputs.prepare(png(24, 24, "red"), "a.png")]
    return (await app.characters.save(actor, h.guild.id, name, images, shared=shared)).id


async def test_the_server_gallery_lists_your_characters_and_the_shared_ones(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    zara = await save(web, h.alice, "Zara")
    bobs = await save(web, h.bob, "Bobby")
    house = await save(web, h.mod, "House style", shared=True)
    http = await sign_in(web, h.alice)
    async with http:
        status, html = await page(http, f"{web.url}/servers/{h.guild.id}")
        assert status == 200 and "Characters and styles" in html
        assert "Zara (yours, 1 image)" in html and "House style (this server&#39;s" in html
        assert "Bobby" not in html
        shown = set(re.findall(r"/characters/([0-9a-f-]{36})/0", html))
        assert shown == {zara, house}
        async with http.get(f"{web.url}/servers/{h.guild.id}/characters/{zara}/0") as r:
            assert r.status == 200 and (await r.read())[:4] == b"\x89PNG"
        for path in (f"/servers/{h.guild.id}/characters/{bobs}/0",
                     f"/servers/{h.guild.id}/characters/{zara}/5",
                     f"/servers/{h.other.id}/characters/{zara}/0"):  # fmt: skip
            status, _ = await page(http, f"{web.url}{path}")
            assert status == 404, path
