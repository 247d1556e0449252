"""Sign in with Discord: the OAuth2 authorization-code flow (scopes `identify` and `guilds`).

https://discord.com/developers/docs/topics/oauth2: the browser goes to /oauth2/authorize with
our `state`; Discord sends it back to the redirect URL with a one-time `code`, which we trade
at /api/v10/oauth2/token (client id and secret by HTTP Basic auth) for a bearer token, and with
it read /users/@me and /users/@me/guilds. The token is used for those two reads and dropped.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from web.sessions import SignInError

log = logging.getLogger(__name__)

SCOPES = "identify guilds"
MANAGE_GUILD = 1 << 5


@dataclass(frozen=True)
class DiscordGuild:
    id: int
    name: str
    manage: bool


@dataclass(frozen=True)
class DiscordAccount:
    id: int
    name: str
    guilds: tuple[DiscordGuild, ...]


class DiscordOAuth:
    """The two halves of the flow."""

    def __init__(
        self, *, client_id: str, client_secret: str, base_url: str, timeout: float = 15.0
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.base_url = base_url.rstrip("/")
        self.api = f"{self.base_url}/api/v10"
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    def authorize_url(self, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "scope": SCOPES,
                "state": state,
                "redirect_uri": redirect_uri,
                "prompt": "none",
            }
        )
        return f"{self.base_url}/oauth2/authorize?{query}"

    async def sign_in(self, code: str, redirect_uri: str) -> DiscordAccount:
        """Trade the code for a token and read who signed in and their servers."""
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as http:
                token = await self._token(http, code, redirect_uri)
                headers = {"Authorization": f"Bearer {token}"}
                me = await self._get(http, "/users/@me", headers)
                guilds = await self._get(http, "/users/@me/guilds", headers)
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("sign-in: Discord unreachable (%s)", type(error).__name__)
            raise SignInError("web.signin_failed") from None
        try:
            return DiscordAccount(
                id=int(me["id"]),
                name=str(me.get("global_name") or me["username"]),
                guilds=tuple(
                    DiscordGuild(
                        int(g["id"]),
                        str(g.get("name", "")),
                        bool(g.get("owner")) or bool(int(g.get("permissions", 0)) & MANAGE_GUILD),
                    )
                    for g in guilds
                ),
            )
        except (KeyError, TypeError, ValueError):
            log.warning("sign-in: Discord answered in an unexpected shape")
            raise SignInError("web.signin_failed") from None

    async def _token(self, http: aiohttp.ClientSession, code: str, redirect_uri: str) -> str:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        credentials = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}
        async with http.post(f"{self.api}/oauth2/token", data=form, headers=headers) as response:
            body = await _json(response)
            if response.status != 200:
                # Never log the body's secrets: only Discord's error name.
                log.warning(
                    "sign-in: token exchange refused (HTTP %d, %s)",
                    response.status,
                    body.get("error") if isinstance(body, dict) else "?",
                )
                raise SignInError("web.signin_failed")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise SignInError("web.signin_failed")
        return token

    async def _get(self, http: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> Any:
        async with http.get(f"{self.api}{path}", headers=headers) as response:
            body = await _json(response)
            if response.status != 200:
                log.warning("sign-in: %s refused (HTTP %d)", path, response.status)
                raise SignInError("web.signin_failed")
            return body


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return None
