"""Signed cookies (itsdangerous): the visitor's session, the OAuth2 `state` of a sign-in in
progress, and the CSRF token every state-changing form carries.

Cookies are HttpOnly and SameSite=Lax (Lax, so that the top-level redirect back from Discord
carries the sign-in state), Secure when WEB_BASE_URL is https. The session cookie holds only
the random id of a session kept on the server (bot.services.websessions: who the visitor is,
their servers, their CSRF token), signed so it can't be forged; signing out deletes that
session, so a copy of the cookie is worth nothing afterwards. It lasts a week.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer
from yarl import URL

from bot.services.types import WebSessionRow
from bot.services.websessions import SESSION_LIFETIME

SESSION_COOKIE = "nb_session"
STATE_COOKIE = "nb_signin"
SESSION_SECONDS = int(SESSION_LIFETIME.total_seconds())
STATE_SECONDS = 10 * 60


#: A signed-in visitor, as the pages see them: the session kept on the server.
Session = WebSessionRow


class SignInError(Exception):
    """Sign-in failed; `key` is the message to show."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class Sessions:
    """Reads and writes the signed cookies."""

    def __init__(self, secret: bytes, *, secure: bool) -> None:
        self.secure = secure
        self._sessions = URLSafeTimedSerializer(secret, salt="nanobanana.session")
        self._states = URLSafeTimedSerializer(secret, salt="nanobanana.signin-state")

    def _cookie(self, response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
            secure=self.secure,
        )  # fmt: skip

    # The session --------------------------------------------------------------------------

    def session_id(self, request: web.Request) -> str | None:
        """The id of the session the request's cookie names (checked on the server next)."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data: Any = self._sessions.loads(raw, max_age=SESSION_SECONDS)
            session_id = data["s"]
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        return session_id if isinstance(session_id, str) and session_id else None

    def start(self, response: web.StreamResponse, session_id: str) -> None:
        """The cookie of a session just opened on the server."""
        self._cookie(response, SESSION_COOKIE, self._sessions.dumps({"s": session_id}),
                     SESSION_SECONDS)  # fmt: skip

    def end(self, response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/")

    # Sign-in state (OAuth2 `state`) ------------------------------------------------------

    def begin_sign_in(self, response: web.StreamResponse, next_path: str) -> str:
        """A fresh `state` for Discord's authorize URL, remembered in a signed cookie."""
        state = secrets.token_urlsafe(24)
        value = self._states.dumps({"s": state, "next": next_path})
        self._cookie(response, STATE_COOKIE, value, STATE_SECONDS)
        return state

    def finish_sign_in(self, request: web.Request, state: str) -> str:
        """Check the `state` Discord sent back against the cookie; the path to go to next."""
        raw = request.cookies.get(STATE_COOKIE)
        if not raw:
            raise SignInError("web.signin_expired")
        try:
            data: Any = self._states.loads(raw, max_age=STATE_SECONDS)
        except BadSignature:
            raise SignInError("web.signin_expired") from None
        expected = str(data.get("s", ""))
        if not state or not hmac.compare_digest(expected, state):
            raise SignInError("web.signin_failed")
        return safe_next(str(data.get("next", "/")))

    def forget_sign_in(self, response: web.StreamResponse) -> None:
        response.del_cookie(STATE_COOKIE, path="/")


def check_csrf(session: Session, submitted: str | None) -> bool:
    """Whether a form's CSRF token is this session's."""
    return bool(submitted) and hmac.compare_digest(session.csrf, str(submitted))


# Longest `next` path kept after sign-in (a real gallery path is far shorter).
MAX_NEXT_CHARS = 1000
# Characters a path to come back to may hold: RFC 3986's unreserved, sub-delims, ":", "@",
# "/", "?" and "%" (for escapes); anything else (whitespace, controls, backslashes, non-ASCII
# look-alike slashes) means it was not made by this site.
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+")
# Escapes that decode to a separator or a control character: a browser or a proxy that
# decodes them would see another host.
_BAD_ESCAPE = re.compile(r"%(?:2f|5c|[01][0-9a-f]|7f)", re.IGNORECASE)


def safe_next(path: str) -> str:
    """Where to go after sign-in: `path` if it is a path on this site, else "/".

    Parsed, not pattern-matched: only printable ASCII path characters (so no tab, newline or
    other control character that a URL parser would drop to make `//host`), no backslash, no
    escaped slash, backslash or control character, no scheme or host, a single leading "/"."""
    if not path or len(path) > MAX_NEXT_CHARS or not _PATH_CHARS.fullmatch(path):
        return "/"
    if _BAD_ESCAPE.search(path):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    if parts.path.startswith("//") or parts.fragment:
        return "/"
    return path


def redirect_location(path: str) -> str:
    """The Location header for `path` (checked with `safe_next`), checked again as yarl
    writes it: the header a browser sees must itself be a path on this site."""
    checked = safe_next(path)
    written = str(URL(checked))
    return written if safe_next(written) == written else "/"
