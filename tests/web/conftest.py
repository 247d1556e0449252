"""Web fixtures: the real bot with its web server on a free loopback port, an HTTP client, API
tokens, and a check of every API answer against the served OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.services.permissions import Identity
from tests.cogs.conftest import Harness, make_harness, png
from tests.fakes.discord_server import FakeGuild, FakeUser
from web.openapi import openapi_document

_DOCUMENT = openapi_document("")
_REGISTRY: Registry[Any] = Registry().with_resource(
    "urn:api", Resource.from_contents(_DOCUMENT, default_specification=DRAFT202012)
)


def assert_documented(body: Any, path: str, method: str, status: int) -> None:
    """`body` matches the OpenAPI document's schema for that answer."""
    escaped = path.replace("~", "~0").replace("/", "~1")
    pointer = f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
    Draft202012Validator({"$ref": f"urn:api#{pointer}"}, registry=_REGISTRY).validate(body)


@dataclass
class Web:
    """The harness plus an HTTP client on the bot's web server."""

    h: Harness
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        web = self.h.app.web
        assert web is not None and web.running
        return web.url

    async def token(self, user: FakeUser, guild: FakeGuild | None = None) -> str:
        """A fresh API token of `user` in `guild` (the first server by default)."""
        app = self.h.app
        where = guild or self.h.guild
        identity = Identity(user.id, user.username, guild_id=where.id,
                            channel_id=where.default_channel.id)  # fmt: skip
        member = await app.members.enter(identity)
        return (await app.tokens.create(member, "tests")).secret

    async def upload(
        self, user: FakeUser, count: int = 1, guild: FakeGuild | None = None, **kwargs: Any
    ) -> list[str]:
        """Images uploaded through the service (no rate limit); their ids, oldest first."""
        payer = await self.h.payer(user, guild)
        ids = []
        for n in range(count):
            result = await self.h.app.uploads.upload(
                payer, png(30 + n, 20 + n), filename=f"{n}.png", title=f"pic {n}", **kwargs
            )
            ids.append(result.image.id)
        return ids

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        expect: int | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        """One API request: (status, JSON body or bytes, response)."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(
            method, f"{self.url}{path}", headers=headers, allow_redirects=False, **kwargs
        ) as response:
            raw = await response.read()
            body: Any = raw
            if response.content_type == "application/json":
                body = await response.json()
        if expect is not None:
            assert response.status == expect, (response.status, body)
        return response.status, body, response


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    async with AsyncExitStack() as stack:
        harness = await make_harness(stack, tmp_path, web=True)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Web(harness, http)


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def enable_sign_in(web: Web) -> None:
    """Restart the bot with sign-in configured against the fake Discord, and register the
    redirect URL (the server's address changes with the restart)."""
    h = web.h
    await h.stop_bot()
    await h.start_bot(
        web=True,
        discord_client_id=str(h.fake.application_id),
        discord_client_secret=SecretStr(h.fake.oauth.client_secret),
        discord_oauth_base_url=h.fake.base_url,
    )
    h.fake.register_redirect(f"{web.url}/auth/callback")


async def sign_in(web: Web, user: FakeUser, next_path: str = "/") -> aiohttp.ClientSession:
    """A browser-like client (cookie jar) signed in as `user` through the whole OAuth2 flow."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    web.h.fake.oauth.user = user
    async with http.get(f"{web.url}/login?next={next_path}", allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        authorize = r.headers["Location"]
    async with http.get(authorize, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        callback = r.headers["Location"]
    async with http.get(callback, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
    return http


async def page(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.text()
