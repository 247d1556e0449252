"""The API as an attacker would use it: disguised blocked words, the server's per-member limits,
bodies and cursors made to crash the server."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.cogs.conftest import make_harness, png
from tests.conftest import fresh_database, shared_pg_server
from tests.fakes.discord_server import InteractionRecord
from tests.pg_server import PostgresUnavailable
from tests.storage.helpers import assert_ledger_consistent
from tests.web.conftest import Web, enable_sign_in, sign_in

GENERATE = "/api/v1/images/generate"
UPLOAD = "/api/v1/images/upload"


async def moderator(web: Web, sub: str, options: dict[str, Any]) -> None:
    rec = await web.h.fake.slash(f"settings {sub}", options, user=web.h.mod)
    assert (await rec.wait_original()).ephemeral


async def test_blocklist_refuses_disguised_words_over_the_api(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    await moderator(web, "blocklist add", {"entry": "banana"})
    await h.payer(h.alice)  # her wallet exists (opening it is not what is checked here)
    before = await h.counts()
    for prompt in (
        "a ban\u3164ana split",  # Hangul filler inside a word
        "a ban\uffa0ana split",  # half-width Hangul filler
        "a ʙᴀɴᴀɴᴀ split",  # small capitals
    ):
        status, body, _ = await web.call("POST", GENERATE, token, json={"prompt": prompt})
        assert status == 422 and body["error"]["code"] == "blocklist_prompt_blocked", prompt
    assert await h.counts() == before
    assert h.api.requests == []  # never sent to Google
    await assert_ledger_consistent(h.app.db)


@pytest.fixture(params=["guild", "global"])
async def scoped(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Web]:
    """The web harness in each economy scope."""
    async with AsyncExitStack() as stack:
        harness = await make_harness(stack, tmp_path, web=True, economy_scope=request.param)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Web(harness, http)


async def test_the_api_takes_the_servers_generate_and_upload_turns(scoped: Web) -> None:
    """A server's `rate_limits` apply to its members' API calls, in the same buckets as their
    commands: switching between Discord and the API gains nothing; another server's own
    rate applies to what is done there."""
    web = scoped
    h = web.h
    await moderator(web, "set", {"setting": "rate_limits", "value": "generate=2, upload=1"})
    token = await web.token(h.owner2)
    other_token = await web.token(h.owner2, h.other)
    # Generate: one turn through Discord, one through the API, then the server's limit.
    made = await h.fake.slash("generate", {"prompt": "a pear"}, user=h.owner2)
    await made.wait_original(lambda m: bool(m.filenames), timeout=10)
    await web.call("POST", GENERATE, token, json={"prompt": "a plum"}, expect=202)
    await h.settle()  # no job in progress: only the rate limit can refuse what follows
    status, body, response = await web.call("POST", GENERATE, token, json={"prompt": "a fig"})
    assert status == 429 and body["error"]["code"] == "error_cooldown", body
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    refused = await h.fake.slash("generate", {"prompt": "a kiwi"}, user=h.owner2)
    assert "Slow down" in (await rec_text(refused))
    # Upload: Other Club keeps the host's rate (five a minute): two pass there...
    for name in ("a.png", "b.png"):
        status, body, _ = await web.call("POST", UPLOAD, other_token, data=upload_form(name))
        assert status == 201, body
    # ...while Banana Club allows one a minute (the member's bucket is the same one: joining
    # more servers gives no more).
    await web.call("POST", UPLOAD, token, data=upload_form("c.png"), expect=201)
    status, body, _ = await web.call("POST", UPLOAD, token, data=upload_form("d.png"))
    assert status == 429 and body["error"]["code"] == "error_cooldown", body
    await h.settle()
    await assert_ledger_consistent(h.app.db)


async def rec_text(rec: InteractionRecord) -> str:
    message = await rec.wait_original(timeout=10)
    return message.content


def upload_form(name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", png(), filename=name, content_type="image/png")
    return form


@pytest.fixture(params=["sqlite", "postgresql"])
async def on_both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Web]:
    """The web harness on SQLite and on PostgreSQL."""
    overrides: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        if request.param == "postgresql":
            try:
                server = shared_pg_server()
            except PostgresUnavailable as error:
                pytest.skip(str(error))
            overrides["database_url"] = await stack.enter_async_context(fresh_database(server))
        harness = await make_harness(stack, tmp_path, web=True, **overrides)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Web(harness, http)


def forged_cursor(text: str) -> str:
    """A cursor in the shape the API gives, holding `text` (JSON-escaped, as any client can
    write it) as its row id."""
    raw = ('["2026-01-01T00:00:00+00:00", "' + text + '"]').encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


HOSTILE_CURSORS = [
    forged_cursor("\\ud800"),  # a lone surrogate, JSON-escaped
    forged_cursor("\\u0000"),  # a NUL (PostgreSQL text can't hold one)
    forged_cursor("x\\u0000y"),
    "%ED%A0%80",  # a lone surrogate as (invalid) UTF-8
    "%00",
    "%F0%9F%8D%8C" * 300,
]


async def test_hostile_cursors_are_400_on_both_databases(on_both: Web) -> None:
    web = on_both
    h = web.h
    await enable_sign_in(web)
    token = await web.token(h.alice)
    await web.upload(h.alice, 2)
    http = await sign_in(web, h.alice)
    async with http:
        for cursor in HOSTILE_CURSORS:
            url = URL(f"{web.url}/api/v1/images?limit=1&cursor={cursor}", encoded=True)
            async with web.http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                body = await r.json()
            assert r.status == 400 and body["error"]["code"] == "api_bad_cursor", (cursor, body)
            # The web gallery's grid: back to the first page, never an error page.
            grid = URL(f"{web.url}/servers/{h.guild.id}?cursor={cursor}", encoded=True)
            async with http.get(grid, allow_redirects=False) as r:
                assert r.status == 302, (cursor, await r.text())
                assert r.headers["Location"] == f"/servers/{h.guild.id}"


HOSTILE_JSON = [
    b'{"prompt": "a \\ud800 banana"}',  # a lone surrogate
    b'{"prompt": "a banana", "model": "\\udfff"}',
    b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # RecursionError
    b"[" * 100_000,
]


async def test_hostile_json_is_a_client_error(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    await h.payer(h.alice)
    before = await h.counts()
    for body in HOSTILE_JSON:
        status, answer, _ = await web.call(
            "POST", GENERATE, token, data=body, headers={"Content-Type": "application/json"}
        )
        assert status == 400 and answer["error"]["code"] == "api_bad_json", (body[:40], answer)
    assert await h.counts() == before
    assert h.api.requests == []


def multipart(name: bytes, value: bytes = b"x", filename: bytes | None = None) -> bytes:
    disposition = b'form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    return b"--B\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + value + b"\r\n--B--\r\n"


HOSTILE_FORMS = [
    multipart(b"pro\x08mpt"),  # a control character in a part's name
    multipart(b"\x17"),
    multipart(b"image", png(), filename=b"a\x01.png"),
    multipart(b"prompt", b"a \xed\xa0\x80 banana"),  # a surrogate as (invalid) UTF-8
    b'--B\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nunterminated',
]


async def test_hostile_multipart_is_a_client_error(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    await h.payer(h.alice)
    before = await h.counts()
    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    for path in (GENERATE, UPLOAD):
        for body in HOSTILE_FORMS:
            status, answer, _ = await web.call("POST", path, token, data=body, headers=headers)
            assert 400 <= status < 500, (path, body[:60], answer)
    assert await h.counts() == before
