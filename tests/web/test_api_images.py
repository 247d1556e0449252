"""GET/DELETE /api/v1/images...: your own images of the token's server, keyset pages, filters,
files; everything else is 404 and changes nothing."""

from __future__ import annotations

import pytest

from storage.objects import S3ObjectStore
from tests.web.conftest import Web, assert_documented
from web.api import add_routes
from web.openapi import openapi_document


def test_every_route_is_in_the_openapi_document_and_back() -> None:
    from aiohttp import web

    app = web.Application()
    add_routes(app.router)
    routed = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    paths = openapi_document("")["paths"]
    documented = {
        (path, method) for path, item in paths.items() for method in item if method != "parameters"
    }
    assert routed == documented


async def test_openapi_is_served(web: Web) -> None:
    _status, body, _ = await web.call("GET", "/api/v1/openapi.json", expect=200)
    assert body["openapi"].startswith("3.1") and body["servers"][0]["url"] == web.url
    assert "/api/v1/images/generate" in body["paths"]


async def test_pages_filters_and_one_image(web: Web) -> None:
    h = web.h
    ids = await web.upload(h.alice, 5)
    await web.upload(h.bob, 1)
    await web.upload(h.owner2, 1, guild=h.other)
    token = await web.token(h.alice)
    seen: list[str] = []
    path = "/api/v1/images?limit=2"
    while path:
        _, body, _ = await web.call("GET", path, token, expect=200)
        assert_documented(body, "/api/v1/images", "get", 200)
        seen += [image["id"] for image in body["images"]]
        next_link = body["links"]["next"]
        assert (next_link is None) == (body["next_cursor"] is None)
        path = next_link
    assert seen == list(reversed(ids))
    _, body, _ = await web.call("GET", "/api/v1/images?type=generated", token, expect=200)
    assert body["images"] == []
    _, body, _ = await web.call(
        "GET", f"/api/v1/images?type=UPLOADED&server={h.guild.id}", token, expect=200
    )
    assert len(body["images"]) == 5
    _, body, _ = await web.call("GET", f"/api/v1/images/{ids[0]}", token, expect=200)
    assert_documented(body, "/api/v1/images/{image_id}", "get", 200)
    assert body["title"] == "pic 0" and body["width"] == 30 and body["server_id"] == str(h.guild.id)
    _, data, response = await web.call("GET", body["links"]["file"], token, expect=200)
    assert response.content_type == "image/png" and data.startswith(b"\x89PNG")
    assert "private" in response.headers["Cache-Control"]
    _status, data, response = await web.call("GET", body["links"]["thumbnail"], token, expect=200)
    assert response.content_type == "image/webp" and data[8:12] == b"WEBP"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("type=drawn", 422, "api_bad_type"),
        ("limit=0", 422, "api_bad_limit"),
        ("limit=101", 422, "api_bad_limit"),
        ("limit=ten", 422, "api_bad_limit"),
        ("cursor=not-a-cursor", 400, "api_bad_cursor"),
        ("server=abc", 422, "api_bad_server"),
        ("server=1234", 422, "api_other_server"),
    ],
)
async def test_bad_listing_queries(web: Web, query: str, status: int, code: str) -> None:
    token = await web.token(web.h.alice)
    got, body, _ = await web.call("GET", f"/api/v1/images?{query}", token)
    assert (got, body["error"]["code"]) == (status, code)
    assert_documented(body, "/api/v1/images", "get", status)


async def test_delete_removes_row_and_objects(web: Web) -> None:
    h = web.h
    (image_id,) = await web.upload(h.alice)
    token = await web.token(h.alice)
    assert len(await h.objects()) == 2
    await web.call("DELETE", f"/api/v1/images/{image_id}", token, expect=204)
    assert await h.rows("images") == 0 and await h.objects() == []
    for method in ("GET", "DELETE"):
        status, body, _ = await web.call(method, f"/api/v1/images/{image_id}", token)
        assert status == 404 and body["error"]["code"] == "error_image_not_found"


async def test_another_members_and_another_servers_images_are_404(web: Web) -> None:
    h = web.h
    (alices,) = await web.upload(h.alice)
    # owner2 is a member of both servers: an image of theirs in Banana Club is not reachable
    # with their token of Other Club, and the other way round.
    (theirs_here,) = await web.upload(h.owner2)
    (theirs_there,) = await web.upload(h.owner2, guild=h.other)
    bob = await web.token(h.bob)
    owner2_there = await web.token(h.owner2, h.other)
    before = await h.counts()
    for token, image_id in ((bob, alices), (owner2_there, theirs_here), (bob, theirs_there)):
        for method, suffix in (("GET", ""), ("GET", "/file"), ("GET", "/thumbnail"),
                               ("DELETE", ""), ("GET", "/../../jobs/" + image_id)):  # fmt: skip
            status, body, _ = await web.call(method, f"/api/v1/images/{image_id}{suffix}", token)
            assert status == 404, (method, suffix, body)
    status, body, _ = await web.call("GET", "/api/v1/images", owner2_there, expect=200)
    assert [i["id"] for i in body["images"]] == [theirs_there]
    for bad in ("nope", "00000000-0000-0000-0000-000000000000", alices.upper()[:35]):
        status, _, _ = await web.call("GET", f"/api/v1/images/{bad}", bob)
        assert status == 404
    assert await h.counts() == before


async def test_a_member_who_left_the_server_is_refused(web: Web) -> None:
    h = web.h
    token = await web.token(h.bob)
    del h.guild.members[h.bob.id]
    status, body, _ = await web.call("GET", "/api/v1/images", token)
    assert status == 401 and body["error"]["code"] == "api_not_member"


async def test_requests_past_the_rate_limit_get_429(web: Web) -> None:
    h = web.h
    await h.stop_bot()
    await h.start_bot(web=True, api_rate_limit=3)
    token = await web.token(h.alice)
    for _ in range(3):
        await web.call("GET", "/api/v1/images", token, expect=200)
    status, body, response = await web.call("GET", "/api/v1/images", token)
    assert status == 429 and body["error"]["code"] == "error_cooldown"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # Another member's token has its own allowance.
    await web.call("GET", "/api/v1/images", await web.token(h.bob), expect=200)


async def test_guessing_tokens_is_throttled_per_address(web: Web) -> None:
    for n in range(30):
        status, _, _ = await web.call("GET", "/api/v1/me", f"nbt_{n:043d}")
        assert status == 401
    status, _body, response = await web.call("GET", "/api/v1/me", f"nbt_{'x' * 43}")
    assert status == 429 and int(response.headers["Retry-After"]) >= 1


async def test_bucket_images_are_short_lived_signed_redirects(
    web: Web, s3_store: S3ObjectStore
) -> None:
    h = web.h
    await h.stop_bot()
    await h.start_bot(store=s3_store, web=True)
    (image_id,) = await web.upload(h.alice)
    token = await web.token(h.alice)
    _, body, _ = await web.call("GET", f"/api/v1/images/{image_id}", token, expect=200)
    # Never the bucket's public address (S3_PUBLIC_BASE_URL): only signed links.
    assert "cdn.example.test" not in str(body)
    _, _, response = await web.call("GET", body["links"]["file"], token, expect=302)
    signed = response.headers["Location"]
    assert "X-Amz-Signature=" in signed and "X-Amz-Expires=300" in signed
    async with web.http.get(signed) as fetched:
        assert fetched.status == 200 and (await fetched.read()).startswith(b"\x89PNG")
