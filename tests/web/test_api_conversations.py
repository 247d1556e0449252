"""/api/v1/conversations (issue 22): create from an image, add turns (paid like an Edit, with
the conversation so far), undo (free), branch (free), get; the API's auth and rate limits as
every route; answers checked against openapi.json."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.cogs.conftest import png
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent
from tests.web.conftest import Web, assert_documented
from tests.web.test_api_generate import finished

BASE = "/api/v1/conversations"
ONE = "/api/v1/conversations/{conversation_id}"
TURNS = "/api/v1/conversations/{conversation_id}/turns"
UNDO = "/api/v1/conversations/{conversation_id}/undo"
BRANCH = "/api/v1/conversations/{conversation_id}/branch"


async def an_image(web: Web, token: str, prompt: str = "a banana astronaut") -> str:
    _, body, _ = await web.call(
        "POST", "/api/v1/images/generate", token, json={"prompt": prompt}, expect=202
    )
    done = await finished(web, token, body["job"]["id"])
    return str(done["images"][0]["id"])


async def turn(web: Web, token: str, conversation: str, prompt: str, **kw: Any) -> dict[str, Any]:
    path = f"{BASE}/{conversation}/turns"
    _, body, _ = await web.call("POST", path, token, json={"prompt": prompt}, expect=202, **kw)
    assert_documented(body, TURNS, "post", 202)
    return dict(await finished(web, token, body["job"]["id"]))


async def test_a_conversation_through_the_api(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    image_id = await an_image(web, token)
    _, created, response = await web.call(
        "POST", BASE, token, json={"image_id": image_id}, expect=201
    )
    assert_documented(created, BASE, "post", 201)
    conversation = created["id"]
    assert response.headers["Location"] == f"{BASE}/{conversation}" and created["turns"] == []
    first = await turn(web, token, conversation, "give it a hat")
    assert first["status"] == "COMPLETED"
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model", "user"]
    second = await turn(web, token, conversation, "now at night")
    assert [c["role"] for c in h.api.requests[-1].contents] == ["user", "model"] * 2 + ["user"]
    _, got, _ = await web.call("GET", f"{BASE}/{conversation}", token, expect=200)
    assert_documented(got, ONE, "get", 200)
    assert [t["prompt"] for t in got["turns"]] == ["give it a hat", "now at night"]
    assert got["turns"][1]["image_id"] == second["images"][0]["id"]
    # Undo: free; the next turn continues from turn 1.
    balance = await h.balance(h.alice)
    _, undone, _ = await web.call("POST", f"{BASE}/{conversation}/undo", token, expect=200)
    assert_documented(undone, UNDO, "post", 200)
    assert undone["undone"] == 2 and len(undone["conversation"]["turns"]) == 1
    assert await h.balance(h.alice) == balance
    # Branch from the image itself (position 0): a new conversation with no turn.
    _, branch, _ = await web.call(
        "POST", f"{BASE}/{conversation}/branch", token, json={"position": 0}, expect=201
    )
    assert_documented(branch, BRANCH, "post", 201)
    assert branch["id"] != conversation and branch["turns"] == []
    _, branch1, _ = await web.call(
        "POST", f"{BASE}/{conversation}/branch", token, json={"position": 1}, expect=201
    )
    assert [t["prompt"] for t in branch1["turns"]] == ["give it a hat"]
    await assert_ledger_consistent(h.app.db)


async def test_a_turn_with_a_reference_image_and_a_failed_turn(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    image_id = await an_image(web, token)
    _, created, _ = await web.call("POST", BASE, token, json={"image_id": image_id}, expect=201)
    conversation = created["id"]
    form = aiohttp.FormData()
    form.add_field("prompt", "wear this")
    form.add_field("image", png(32, 32, "red"), filename="hat.png", content_type="image/png")
    _, body, _ = await web.call(
        "POST", f"{BASE}/{conversation}/turns", token, data=form, expect=202
    )
    await finished(web, token, body["job"]["id"])
    assert len(h.api.requests[-1].images) == 1
    h.api.script([Behaviour(Mode.BAD_REQUEST)])
    failed = await turn(web, token, conversation, "break it")
    assert failed["status"] == "FAILED" and failed["refund"]["coins"] == 100
    _, got, _ = await web.call("GET", f"{BASE}/{conversation}", token, expect=200)
    assert [t["prompt"] for t in got["turns"]] == ["wear this"]
    await assert_ledger_consistent(h.app.db)


async def test_conversations_are_personal_and_checked(web: Web) -> None:
    h = web.h
    alice = await web.token(h.alice)
    bob = await web.token(h.bob)
    image_id = await an_image(web, alice)
    # bob may not start a conversation from alice's image, nor see or continue hers.
    status, body, _ = await web.call("POST", BASE, bob, json={"image_id": image_id})
    assert status in (403, 404), body
    _, created, _ = await web.call("POST", BASE, alice, json={"image_id": image_id}, expect=201)
    conversation = created["id"]
    # Personal access, as for images: someone else's conversation is not found (never 403).
    for method, path, payload in (
        ("GET", f"{BASE}/{conversation}", None),
        ("POST", f"{BASE}/{conversation}/turns", {"prompt": "mine now"}),
        ("POST", f"{BASE}/{conversation}/undo", None),
        ("POST", f"{BASE}/{conversation}/branch", None),
    ):
        _, body, _ = await web.call(method, path, bob, json=payload, expect=404)
        assert body["error"]["code"] == "conv_not_found", (path, body)
    assert await h.balance(h.bob) == 300 and len(h.api.requests) == 1
    # Bad input: an unknown field, an empty prompt, nothing to undo, an unknown conversation.
    await web.call("POST", f"{BASE}/{conversation}/turns", alice, json={"x": 1}, expect=422)
    await web.call("POST", f"{BASE}/{conversation}/turns", alice, json={"prompt": " "},
                   expect=422)  # fmt: skip
    _, nothing, _ = await web.call("POST", f"{BASE}/{conversation}/undo", alice, expect=422)
    assert nothing["error"]["code"] == "conv_nothing"
    missing = "00000000-0000-4000-8000-000000000000"
    _, gone, _ = await web.call("GET", f"{BASE}/{missing}", alice, expect=404)
    assert gone["error"]["code"] == "conv_not_found"
    # No token: 401, as every route.
    await web.call("GET", f"{BASE}/{conversation}", None, expect=401)
    assert await h.balance(h.alice) == 200 and len(h.api.requests) == 1
