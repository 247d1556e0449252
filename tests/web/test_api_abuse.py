"""The API as an attacker would use it: disguised blocked words, the server's per-member limits,
bodies and cursors made to crash the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cogs.conftest import make_harness, png
from tests.fakes.discord_server import InteractionRecord
from tests.storage.helpers import assert_ledger_consistent
from tests.web.conftest import Web

GENERATE = "/api/v1/images/generate"
UPLOAD = "/api/v1/images/upload"


async def moderator(web: Web, sub: str, options: dict[str, Any]) -> None:
    rec = await web.h.fake.slash(f"settings {sub}", options, user=web.h.mod)
    assert (await rec.wait_original()).ephemeral


@pytest.mark.parametrize(
    "prompt",
    [
        "a ban\u3164ana split",  # Hangul filler inside a word
        "a ban\uffa0ana split",  # half-width Hangul filler
        "a ʙᴀɴᴀɴᴀ split",  # small capitals
    ],
)
async def test_blocklist_refuses_disguised_words_over_the_api(web: Web, prompt: str) -> None:
    h = web.h
    token = await web.token(h.alice)
    await moderator(web, "blocklist add", {"entry": "banana"})
    await h.payer(h.alice)  # her wallet exists (opening it is not what is checked here)
    before = await h.counts()
    _, body, _ = await web.call("POST", GENERATE, token, json={"prompt": prompt}, expect=422)
    assert body["error"]["code"] == "blocklist_prompt_blocked"
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
