"""The fake Discord's OAuth2: as strict as Discord's docs and spec, answers in the spec's shapes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from tests.fakes.discord_server import FakeDiscord

REDIRECT = "http://127.0.0.1:9/auth/callback"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Banana Club")
        fake.oauth.user = fake.add_user("alice", guilds=[guild])
        fake.register_redirect(REDIRECT)
        yield fake


async def authorize(
    http: aiohttp.ClientSession, fake: FakeDiscord, **query: str
) -> aiohttp.ClientResponse:
    params = {
        "response_type": "code",
        "client_id": str(fake.application_id),
        "scope": "identify guilds",
        "redirect_uri": REDIRECT,
        "state": "s1",
        **query,
    }
    async with http.get(f"{fake.base_url}/oauth2/authorize?{urlencode(params)}",
                        allow_redirects=False) as response:  # fmt: skip
        await response.read()
        return response


async def exchange(
    http: aiohttp.ClientSession, fake: FakeDiscord, code: str, **form: str
) -> tuple[int, dict[str, str]]:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **form}
    auth = {"Authorization": basic(str(fake.application_id), fake.oauth.client_secret)}
    async with http.post(f"{fake.base_url}/api/v10/oauth2/token", data=data, headers=auth) as r:
        return r.status, await r.json()


async def test_code_flow_and_bearer_reads(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        response = await authorize(http, fake)
        assert response.status == 302
        back = parse_qs(urlsplit(response.headers["Location"]).query)
        assert back["state"] == ["s1"]
        status, token = await exchange(http, fake, back["code"][0])
        assert status == 200 and token["token_type"] == "Bearer"
        assert token["scope"] == "guilds identify"
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        async with http.get(f"{fake.base_url}/api/v10/users/@me", headers=headers) as r:
            me = await r.json()
        fake.spec.validate_response("GET", "/users/@me", me)
        assert me["username"] == "alice"
        async with http.get(f"{fake.base_url}/api/v10/users/@me/guilds?limit=10",
                            headers=headers) as r:  # fmt: skip
            guilds = await r.json()
        fake.spec.validate_response("GET", "/users/@me/guilds", guilds)
        assert [g["name"] for g in guilds] == ["Banana Club"] and guilds[0]["owner"] is False
        # A bearer token is no bot token: routes the spec keeps for bots refuse it.
        async with http.get(f"{fake.base_url}/api/v10/guilds/{guilds[0]['id']}",
                            headers=headers) as r:  # fmt: skip
            assert r.status == 401
        # The spec's query rules hold for bearer calls too.
        async with http.get(f"{fake.base_url}/api/v10/users/@me/guilds?limit=500",
                            headers=headers) as r:  # fmt: skip
            assert r.status == 400
        fake.take_invalid()
        # Codes are single-use.
        status, body = await exchange(http, fake, back["code"][0])
        assert status == 400 and body["error"] == "invalid_grant"


async def test_scopes_limit_what_a_token_reads(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        response = await authorize(http, fake, scope="identify")
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        _, token = await exchange(http, fake, code)
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        async with http.get(f"{fake.base_url}/api/v10/users/@me/guilds", headers=headers) as r:
            assert r.status == 401


@pytest.mark.parametrize(
    "query",
    [{"client_id": "1"}, {"redirect_uri": "http://evil.test/cb"}, {"scope": "identify sudo"},
     {"response_type": "token"}],
)  # fmt: skip
async def test_bad_authorize_requests_are_refused(fake: FakeDiscord, query: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        response = await authorize(http, fake, **query)
    assert response.status == 400
    assert len(fake.take_invalid()) == 1


async def test_token_errors(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        response = await authorize(http, fake)
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        wrong = {"Authorization": basic(str(fake.application_id), "not-the-secret")}
        async with http.post(f"{fake.base_url}/api/v10/oauth2/token", headers=wrong,
                             data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT}) as r:  # fmt: skip
            assert r.status == 401 and (await r.json())["error"] == "invalid_client"
        status, body = await exchange(http, fake, code, redirect_uri="http://127.0.0.1:9/other")
        assert status == 400 and body["error"] == "invalid_grant"
        fake.oauth.deny = True
        response = await authorize(http, fake)
        back = parse_qs(urlsplit(response.headers["Location"]).query)
        assert back["error"] == ["access_denied"] and back["state"] == ["s1"]
