"""The API's gate: every way a request can lack the right to what it asks, over real HTTP."""

from __future__ import annotations

from bot.services.permissions import Identity
from tests.web.conftest import Web, assert_documented


async def test_no_token_malformed_unknown_and_wrong_scheme(web: Web) -> None:
    status, body, response = await web.call("GET", "/api/v1/me")
    assert status == 401 and body["error"]["code"] == "api_token_missing"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "/token create" in body["error"]["message"]
    for header in ("Basic YWxpY2U6cHc=", "Bearer", "Bearer nbt_short",
                   "Bearer nbt_" + "A" * 43):  # fmt: skip
        status, body, _ = await web.call("GET", "/api/v1/me", headers={"Authorization": header})
        assert status == 401 and body["error"]["code"] == "api_token_invalid", header
        assert_documented(body, "/api/v1/me", "get", 401)


async def test_a_token_works_until_revoked(web: Web) -> None:
    token = await web.token(web.h.alice)
    status, body, _ = await web.call("GET", "/api/v1/me", token, expect=200)
    assert_documented(body, "/api/v1/me", "get", 200)
    assert body["server"] == {"id": str(web.h.guild.id), "name": "Banana Club"}
    assert body["wallets"][0]["coins"] == 300
    app = web.h.app
    member = await app.members.enter(Identity(web.h.alice.id, "alice", guild_id=web.h.guild.id))
    (listed,) = await app.tokens.list(member)
    assert listed.last_used_at is not None
    await app.tokens.revoke(member, listed.short_id)
    status, body, _ = await web.call("GET", "/api/v1/me", token)
    assert status == 401 and body["error"]["code"] == "api_token_revoked"


async def test_spanish_errors_follow_accept_language(web: Web) -> None:
    status, body, _ = await web.call(
        "GET", "/api/v1/me", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}
    )
    assert status == 401 and "token de API" in body["error"]["message"]


async def test_unknown_routes_and_methods_answer_json(web: Web) -> None:
    status, body, _ = await web.call("GET", "/api/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, _ = await web.call("PUT", "/api/v1/me")
    assert status == 405 and body["error"]["code"] == "method_not_allowed"


async def test_security_headers_on_api_and_pages(web: Web) -> None:
    for path in ("/api/v1/me", "/", "/healthz"):
        _, _, response = await web.call("GET", path)
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src" not in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"


async def test_servers_outside_the_allow_list_get_nothing(web: Web) -> None:
    h = web.h
    token = await web.token(h.alice)
    await h.stop_bot()
    await h.start_bot(web=True, allowed_guild_ids=[h.other.id])
    before = await h.counts()
    status, body, _ = await web.call("GET", "/api/v1/me", token)
    assert status == 403 and body["error"]["code"] == "error_guild_not_allowed"
    status, body, _ = await web.call("POST", "/api/v1/images/generate", token, json={"prompt": "x"})
    assert status == 403 and await h.counts() == before
