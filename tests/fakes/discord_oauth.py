"""OAuth2 for the fake Discord: the authorization-code flow a web app signs members in with.

- ``GET /oauth2/authorize`` (the page a browser is sent to): the user signed in to Discord in
  that browser is ``fake.oauth_user``; they approve (or, with ``fake.oauth_deny``, cancel) and
  are redirected to ``redirect_uri`` with ``code`` (or ``error=access_denied``) and ``state``.
  As on Discord, ``client_id`` must be the application's, ``redirect_uri`` one registered with
  ``fake.register_redirect``, ``response_type=code`` and every scope one the spec names.
- ``POST /api/v10/oauth2/token`` (not in Discord's OpenAPI spec; checked here as the docs say):
  form-encoded, the client's id and secret by HTTP Basic or in the form, ``grant_type=
  authorization_code``, a code that is this client's, unused and under 10 minutes old, and the
  same ``redirect_uri``; errors in OAuth2's shape (``{"error": "invalid_grant", ...}``).
- Bearer tokens then work on the operations whose spec ``security`` allows OAuth2 with one of
  the token's scopes (``/users/@me`` needs ``identify``, ``/users/@me/guilds`` ``guilds``);
  anything else answers 401 like Discord.

Malformed requests are recorded as invalid (the test fails unless it expected them).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.discord_models import FakeInvalidRequest, FakeUser

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord

CODE_LIFETIME = 600.0  # Discord: codes expire after 10 minutes
TOKEN_LIFETIME = 604800  # Discord: access tokens last a week


@dataclass
class _Grant:
    user_id: int
    scopes: frozenset[str]
    redirect_uri: str
    issued_at: float
    used: bool = False


@dataclass
class _AccessToken:
    user_id: int
    scopes: frozenset[str]
    expires_at: float


@dataclass
class OAuthState:
    """The fake's OAuth2 world: the application's secret, its registered redirect URLs, who
    is signed in to Discord in the browser, and what was issued."""

    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = field(default_factory=list)
    user: FakeUser | None = None
    deny: bool = False
    codes: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, _AccessToken] = field(default_factory=dict)
    authorizations: int = 0
    exchanges: int = 0


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


class OAuthRoutes:
    """The handlers, bound to one FakeDiscord."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.state = OAuthState()

    def _invalid(self, request: web.Request, status: int, problem: str, payload: Any) -> None:
        self.fake.invalid_requests.append(
            FakeInvalidRequest(request.method, request.path, status, 0, [problem], payload)
        )

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        state = self.state
        problems = []
        if query.get("response_type") != "code":
            problems.append("response_type must be code")
        if query.get("client_id") != str(self.fake.application_id):
            problems.append(f"client_id {query.get('client_id')!r} is not the application's")
        redirect = query.get("redirect_uri", "")
        if redirect not in state.redirect_uris:
            problems.append(f"redirect_uri {redirect!r} is not registered")
        scopes = frozenset(query.get("scope", "").split())
        unknown = scopes - self.fake.spec.oauth_scopes
        if not scopes or unknown:
            problems.append(f"invalid scope(s): {sorted(unknown) or 'none'}")
        if problems:
            self._invalid(request, 400, "; ".join(problems), dict(query))
            return web.Response(status=400, text="Invalid OAuth2 request: " + "; ".join(problems))
        if state.user is None:
            return web.Response(status=401, text="Log in to Discord to continue.")
        state.authorizations += 1
        back: dict[str, str] = {}
        if state.deny:
            back = {"error": "access_denied",
                    "error_description": "The resource owner or authorization server denied "
                    "the request"}  # fmt: skip
        else:
            code = secrets.token_urlsafe(20)
            state.codes[code] = _Grant(state.user.id, scopes, redirect, self.fake.clock.now())
            back = {"code": code}
        if "state" in query:
            back["state"] = query["state"]
        raise web.HTTPFound(f"{redirect}?{urlencode(back)}")

    async def token(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        if request.content_type != "application/x-www-form-urlencoded":
            self._invalid(request, 400, f"token request as {request.content_type}", None)
            return _oauth_error(400, "invalid_request", "Content-Type must be form-encoded")
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if client_id != str(self.fake.application_id) or client_secret != state.client_secret:
            return _oauth_error(401, "invalid_client", "Invalid client credentials")
        if fields.get("grant_type") != "authorization_code":
            self._invalid(request, 400, "grant_type must be authorization_code", fields)
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")
        grant = state.codes.get(fields.get("code", ""))
        now = self.fake.clock.now()
        if (
            grant is None
            or grant.used
            or now - grant.issued_at > CODE_LIFETIME
            or grant.redirect_uri != fields.get("redirect_uri")
        ):
            if grant is not None:
                grant.used = True  # a replayed or mismatched code is burnt
            return _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
        grant.used = True
        state.exchanges += 1
        access = secrets.token_urlsafe(24)
        state.tokens[access] = _AccessToken(grant.user_id, grant.scopes, now + TOKEN_LIFETIME)
        return web.json_response(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": " ".join(sorted(grant.scopes)),
            }
        )

    def bearer_user(self, header: str, scopes: tuple[str, ...] | None) -> FakeUser | None:
        """The user of a bearer token allowed on an operation, or None (401)."""
        token = self.state.tokens.get(header.removeprefix("Bearer ").strip())
        if token is None or token.expires_at < self.fake.clock.now() or scopes is None:
            return None
        if not token.scopes & set(scopes):
            return None
        return self.fake.users.get(token.user_id)

    # Answers for bearer tokens ---------------------------------------------------------

    def me(self, user: FakeUser) -> dict[str, Any]:
        return {
            **user.to_json(),
            "mfa_enabled": False,
            "locale": "en-US",
            "premium_type": 0,
            "banner": None,
            "accent_color": None,
        }

    def my_guilds(self, user: FakeUser, request: web.Request) -> list[dict[str, Any]]:
        guilds = sorted(
            (g for g in self.fake.guilds.values() if user.id in g.members), key=lambda g: g.id
        )
        query = request.query
        if "after" in query:
            guilds = [g for g in guilds if g.id > int(query["after"])]
        if "before" in query:
            guilds = [g for g in guilds if g.id < int(query["before"])]
        limit = int(query.get("limit", 200))
        return [
            {
                "id": str(g.id),
                "name": g.name,
                "icon": None,
                "banner": None,
                "owner": g.owner_id == user.id,
                "permissions": str(g.permissions_for(user.id)),
                "features": [],
            }
            for g in guilds[:limit]
        ]
