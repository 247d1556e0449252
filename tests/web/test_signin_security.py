"""Sign-in as an attacker would try it: the `next` path after Discord's round trip never leads
off-site, whatever it is encoded as (control characters, whitespace, backslashes, encoded
slashes, look-alike slashes)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest
from yarl import URL

from tests.web.conftest import CSRF, Web, enable_sign_in, page, sign_in
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


async def test_next_after_sign_in_never_leaves_the_site(web: Web) -> None:
    """Each hostile `next` through the whole flow (one bot, a sign-in each)."""
    h = web.h
    await enable_sign_in(web)
    h.fake.oauth.user = h.alice
    site = urlsplit(web.url)
    for raw in HOSTILE_NEXT:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            url = URL(f"{web.url}/login?next={raw}", encoded=True)
            async with http.get(url, allow_redirects=False) as r:
                assert r.status == 302, (raw, await r.text())
                authorize = r.headers["Location"]
            async with http.get(authorize, allow_redirects=False) as r:
                callback = r.headers["Location"]
            async with http.get(callback, allow_redirects=False) as r:
                assert r.status == 302, (raw, await r.text())
                location = r.headers["Location"]
        # Where a browser goes from that header: this site, always.
        target = urlsplit(urljoin(f"{web.url}/auth/callback", location))
        assert (target.scheme, target.netloc) == (site.scheme, site.netloc), (raw, location)
        assert location.startswith("/") and not location.startswith(("//", "/\\")), raw
        assert location.isascii() and location.isprintable() and " " not in location, raw


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


async def session_cookie(http: aiohttp.ClientSession) -> str:
    cookie = http.cookie_jar.filter_cookies(URL("http://127.0.0.1/"))
    return cookie["nb_session"].value


async def test_a_session_cookie_replayed_after_sign_out_is_refused(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    await web.upload(h.alice, 1)
    http = await sign_in(web, h.alice)
    async with http:
        stolen = await session_cookie(http)
        status, html = await page(http, f"{web.url}/all")
        assert status == 200 and "Signed in as alice" in html
        csrf = CSRF.search(html)
        assert csrf is not None
        async with http.post(f"{web.url}/logout", data={"csrf": csrf[1]},
                             allow_redirects=False) as r:  # fmt: skip
            assert r.status == 302
    # The same cookie, replayed from elsewhere after sign-out: signed in as nobody.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as replay:
        replay.cookie_jar.update_cookies({"nb_session": stolen}, response_url=URL(web.url))
        for path in ("/all", f"/servers/{h.guild.id}"):
            status, _ = await page(replay, f"{web.url}{path}")
            assert status == 302, path
        status, html = await page(replay, f"{web.url}/")
        assert "Signed in as" not in html
    # Another session of hers (another browser) is not signed out by this one.
    other = await sign_in(web, h.alice)
    async with other:
        status, _ = await page(other, f"{web.url}/all")
        assert status == 200


async def test_a_member_who_left_loses_the_servers_gallery(web: Web) -> None:
    """Membership is checked again as tokens check it (each visit, at most MEMBER_TTL old):
    a member who left a server no longer sees its gallery with a session from before."""
    h = web.h
    await enable_sign_in(web)
    h.app.directory.ttl = 0.0  # (the bot reuses a member look-up for a minute)
    (image_id,) = await web.upload(h.owner2, 1)
    await web.upload(h.owner2, 1, guild=h.other)
    http = await sign_in(web, h.owner2)
    async with http:
        status, html = await page(http, f"{web.url}/servers/{h.guild.id}")
        assert status == 200 and "Banana Club" in html and "Other Club" in html
        del h.guild.members[h.owner2.id]  # owner2 leaves Banana Club
        for path in (f"/servers/{h.guild.id}", f"/servers/{h.guild.id}/images/{image_id}"):
            status, _ = await page(http, f"{web.url}{path}")
            assert status == 404, path
        # Her other server is still hers, and Banana Club is gone from her list.
        status, html = await page(http, f"{web.url}/servers/{h.other.id}")
        assert status == 200 and "Other Club" in html and "Banana Club" not in html
