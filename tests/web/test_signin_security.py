"""Sign-in as an attacker would try it: the `next` path after Discord's round trip never leads
off-site, whatever it is encoded as (control characters, whitespace, backslashes, encoded
slashes, look-alike slashes)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest
from yarl import URL

from tests.web.conftest import Web, enable_sign_in
from web.sessions import safe_next

# Raw query strings, as an attacker would put them in a link (already percent-encoded).
HOSTILE_NEXT = [
    "/%09/evil.example",  # tab: aiohttp/yarl drop it when building the header -> //evil
    "/%0a/evil.example",
    "/%0d/evil.example",
    "/%0d%0a/evil.example",
    "/%00/evil.example",
    "%09//evil.example",
    "//evil.example",
    "///evil.example",
    "/%2f/evil.example",
    "/%2F%2Fevil.example",
    "%2f%2fevil.example",
    "/%5c/evil.example",
    "/%5cevil.example",
    "%5c%5cevil.example",
    "/%E2%88%95/evil.example",  # U+2215 DIVISION SLASH
    "/%EF%BC%8F/evil.example",  # U+FF0F FULLWIDTH SOLIDUS
    "/%C2%A0/evil.example",  # no-break space
    "/%E2%80%8B/evil.example",  # zero-width space
    "/%20/evil.example",
    "https://evil.example/",
    "https:/evil.example",
    "javascript:alert(1)",
    "/%2e%2e//evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("raw", HOSTILE_NEXT)
async def test_next_after_sign_in_never_leaves_the_site(web: Web, raw: str) -> None:
    h = web.h
    await enable_sign_in(web)
    h.fake.oauth.user = h.alice
    site = urlsplit(web.url)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        url = f"{web.url}/login?next={raw}"
        async with http.get(URL(url, encoded=True), allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            authorize = r.headers["Location"]
        async with http.get(authorize, allow_redirects=False) as r:
            callback = r.headers["Location"]
        async with http.get(callback, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            location = r.headers["Location"]
    # Where a browser goes from that header: this site, always.
    target = urlsplit(urljoin(f"{web.url}/auth/callback", location))
    assert (target.scheme, target.netloc) == (site.scheme, site.netloc), location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert location.isascii() and location.isprintable() and " " not in location, location


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/all", "/all"),
        ("/servers/1/images/x?cursor=abc", "/servers/1/images/x?cursor=abc"),
        ("/all?a=%20b", "/all?a=%20b"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r/evil.example", "/"),
        ("/\x7f/evil.example", "/"),
        ("/\u2028/evil.example", "/"),
        ("/\ud800", "/"),
        ("/%2F/evil.example", "/"),
        ("/%5C/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\uff0fevil.example", "/"),
        ("//evil.example", "/"),
        ("http://evil.example", "/"),
        ("/" + "a" * 5000, "/"),
    ],
)
def test_safe_next(path: str, expected: str) -> None:
    assert safe_next(path) == expected
