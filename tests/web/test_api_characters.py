"""/api/v1/characters: list, create and delete the character library with a member's token,
in the token's server only, with the same rules as /character (issue 22 item 5)."""

from __future__ import annotations

import aiohttp

from tests.cogs.conftest import png
from tests.web.conftest import Web, assert_documented


def form(name: str, *images: bytes, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("name", name)
    for key, value in fields.items():
        data.add_field(key, value)
    for n, image in enumerate(images):
        field = "image" if n == 0 else f"image{n + 1}"
        data.add_field(field, image, filename=f"{n}.png", content_type="image/png")
    return data


async def test_create_list_and_delete_a_character(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    _, body, _ = await web.call(
        "POST", "/api/v1/characters", token, data=form("Zara", png(), png(20, 30)), expect=201
    )
    assert_documented(body, "/api/v1/characters", "post", 201)
    made = body["character"]
    assert made["name"] == "Zara" and made["references"] == 2 and not made["shared"]
    _, body, _ = await web.call("GET", "/api/v1/characters", token, expect=200)
    assert_documented(body, "/api/v1/characters", "get", 200)
    assert [c["name"] for c in body["characters"]] == ["Zara"]
    # Bob sees nothing of Alice's, and can't delete it; Alice's token in the other server
    # doesn't reach it either.
    bob = await web.token(h.bob)
    _, body, _ = await web.call("GET", "/api/v1/characters", bob, expect=200)
    assert body["characters"] == []
    await web.call("DELETE", f"/api/v1/characters/{made['id']}", bob, expect=404)
    h.fake.add_member(h.other, h.alice)
    elsewhere = await web.token(h.alice, h.other)
    await web.call("DELETE", f"/api/v1/characters/{made['id']}", elsewhere, expect=404)
    await web.call("DELETE", f"/api/v1/characters/{made['id']}", token, expect=204)
    assert await h.rows("characters") == 0 and await h.objects() == []


async def test_bad_characters_are_refused_and_leave_nothing(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    status, body, _ = await web.call(
        "POST", "/api/v1/characters", token, data=form("Zara", png(), shared="true")
    )
    assert status == 403 and body["error"]["code"] == "character_shared_moderators"
    status, body, _ = await web.call("POST", "/api/v1/characters", token, data=form("!!", png()))
    assert status == 422 and body["error"]["code"] == "character_bad_name"
    # A name alone is a plain form, not multipart: 415, as documented.
    status, body, _ = await web.call("POST", "/api/v1/characters", token, data=form("Zara"))
    assert status == 415
    status, body, _ = await web.call(
        "POST", "/api/v1/characters", token, data=form("Zara", b"not an image")
    )
    assert status in (415, 422)
    assert await h.rows("characters") == 0 and await h.objects() == []
