"""POST /api/v1/images/upload: /upload's checks over HTTP; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.cogs.conftest import png
from tests.web.conftest import Web, assert_documented

PATH = "/api/v1/images/upload"


def form(data: bytes | None, filename: str = "cat.png", **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        body.add_field(name, value)
    if data is not None:
        body.add_field("image", data, filename=filename, content_type="image/png")
    return body


async def test_upload_is_stored_and_charged(web: Web) -> None:
    h = web.h
    await h.stop_bot()
    await h.start_bot(web=True, upload_cost=25)
    token = await web.token(h.alice)
    _status, body, response = await web.call(
        "POST", PATH, token, data=form(png(120, 90), title="My cat", description="sofa"),
        expect=201,
    )  # fmt: skip
    assert_documented(body, PATH, "post", 201)
    image = body["image"]
    assert (image["title"], image["width"], image["height"]) == ("My cat", 120, 90)
    assert body["balance"] == 275 and await h.balance(h.alice) == 275
    assert response.headers["Location"] == f"/api/v1/images/{image['id']}"
    assert len(await h.objects()) == 2
    kinds = await h.app.db.fetchall("SELECT kind, delta FROM coin_transactions ORDER BY seq")
    assert [(r["kind"], r["delta"]) for r in kinds] == [("STARTER", 300), ("UPLOAD", -25)]


async def too_big_request(web: Web, token: str) -> tuple[int, str]:
    """An upload whose declared length is over the limit, refused before it is read."""
    data = b"\x89PNG" + b"\x00" * 1_100_000
    async with web.http.post(
        f"{web.url}{PATH}", data=form(data), headers={"Authorization": f"Bearer {token}"}
    ) as response:
        body = await response.json()
    return response.status, body["error"]["code"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"json": {"image": "aGVsbG8="}}, 415, "api_not_multipart"),
        ({"data": form(None, title="no file")}, 400, "api_missing_field"),
        ({"data": form(b"%PDF-1.7 not an image", "doc.png")}, 415, "image_not_image"),
        ({"data": form(png()[:70], "cut.png")}, 422, "image_corrupt"),
        ({"data": form(b"", "empty.png")}, 422, "image_empty"),
        ({"data": form(png(), title="t" * 101)}, 422, "upload_title_too_long"),
        ({"data": form(b"GIF89a" + b"\x00" * 50, "a.gif")}, 415, "image_not_image"),
    ],
)
async def test_bad_uploads_change_nothing(
    web: Web, body: dict[str, Any], status: int, code: str
) -> None:
    h = web.h
    token = await web.token(h.alice)
    await h.payer(h.alice)  # the wallet exists (opening it is not the request's doing)
    before = await h.counts()
    got, answer, _ = await web.call("POST", PATH, token, **body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert_documented(answer, PATH, "post", status)
    assert await h.counts() == before and await h.balance(h.alice) == 300


async def test_too_large_is_413_and_changes_nothing(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    before = await h.counts()
    assert await too_big_request(web, token) == (413, "image_too_large")
    assert await h.counts() == before


async def test_an_extra_file_field_is_refused(web: Web) -> None:
    token = await web.token(web.h.alice)
    body = form(png())
    body.add_field("other", b"x", filename="x.bin")
    status, answer, _ = await web.call("POST", PATH, token, data=body)
    assert (status, answer["error"]["code"]) == (400, "api_unexpected_file")
    assert await web.h.rows("images") == 0


async def test_not_enough_coins_is_402(web: Web) -> None:
    h = web.h
    await h.stop_bot()
    await h.start_bot(web=True, upload_cost=500)
    token = await web.token(h.alice)
    status, body, _ = await web.call("POST", PATH, token, data=form(png()))
    assert status == 402 and body["error"]["code"] == "error_coins"
    assert (body["error"]["balance"], body["error"]["cost"]) == (300, 500)
    assert await h.rows("images") == 0


async def test_the_upload_limit_is_shared_with_the_slash_command(web: Web) -> None:
    h = web.h
    token = await web.token(h.bob)
    for n in range(5):
        await web.call("POST", PATH, token, data=form(png(20 + n, 20)), expect=201)
    status, _body, response = await web.call("POST", PATH, token, data=form(png()))
    assert status == 429 and int(response.headers["Retry-After"]) >= 1
    rec = await h.fake.slash("upload", {"image": h.fake.upload(png(), "b.png")}, user=h.bob)
    message = await rec.wait_original()
    assert "Slow down! Try again in" in message.content
    assert await h.rows("images") == 5
