"""The API as an attacker would use it: disguised blocked words, the server's per-member limits,
bodies and cursors made to crash the server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.storage.helpers import assert_ledger_consistent
from tests.web.conftest import Web

GENERATE = "/api/v1/images/generate"


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
