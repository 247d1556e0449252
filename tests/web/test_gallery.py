"""The web gallery over HTTP: sign-in against the fake Discord, then only your own images, with
CSRF on every form that changes anything, in the browser's language."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.web.conftest import CSRF, Web, enable_sign_in, page, sign_in


async def test_sign_in_is_off_with_a_clear_page(web: Web) -> None:
    async with aiohttp.ClientSession() as http:
        status, html = await page(http, f"{web.url}/")
        assert status == 200 and "Sign-in is off" in html and "DISCORD_CLIENT_ID" in html
        status, html = await page(http, f"{web.url}/login")
        assert status == 503 and "Sign-in is off" in html
        status, html = await page(http, f"{web.url}/", headers={"Accept-Language": "es"})
        assert "El acceso está desactivado" in html and 'lang="es"' in html


async def test_sign_in_sets_a_signed_httponly_session(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    await web.upload(h.alice, 2)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status, html = await page(http, f"{web.url}/")
        assert status == 200 and 'id="sign-in"' in html
        async with http.get(f"{web.url}/login?next=/all", allow_redirects=False) as r:
            location = urlsplit(r.headers["Location"])
            assert (
                "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Lax" in r.headers["Set-Cookie"]
            )
        query = parse_qs(location.query)
        assert query["scope"] == ["identify guilds"] and query["response_type"] == ["code"]
        assert query["redirect_uri"] == [f"{web.url}/auth/callback"] and query["state"][0]
        h.fake.oauth.user = h.alice
        async with http.get(r.headers["Location"], allow_redirects=False) as r2:
            callback = r2.headers["Location"]
        async with http.get(callback, allow_redirects=False) as r3:
            assert r3.status == 302 and r3.headers["Location"] == "/all"
            cookie = r3.headers.getall("Set-Cookie")
        assert any("nb_session=" in c and "HttpOnly" in c and "SameSite=Lax" in c for c in cookie)
        status, html = await page(http, f"{web.url}/all")
        assert status == 200 and "Signed in as alice" in html and "2 images" in html
        # The code was used up: replaying the callback signs nobody in.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
            status, html = await page(other, callback)
            assert status == 400


async def test_bad_state_denial_and_forged_cookies(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    h.fake.oauth.user = h.alice
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{web.url}/login", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        async with http.get(authorize, allow_redirects=False) as r:
            callback = urlsplit(r.headers["Location"])
        code = parse_qs(callback.query)["code"][0]
        status, html = await page(http, f"{web.url}/auth/callback?code={code}&state=forged")
        assert status == 400 and "Signing in with Discord" in html
        assert h.fake.oauth.exchanges == 0  # refused before the code was traded
        status, _ = await page(http, f"{web.url}/all")
        assert status == 302  # not signed in
        h.fake.oauth.deny = True
        async with http.get(f"{web.url}/login", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        async with http.get(authorize, allow_redirects=False) as r:
            denied = r.headers["Location"]
        status, html = await page(http, denied)
        assert status == 400 and "cancelled" in html
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        http.cookie_jar.update_cookies({"nb_session": "eyJ1IjoiMSJ9.forged.sig"},
                                       response_url=__import__("yarl").URL(web.url))  # fmt: skip
        status, _ = await page(http, f"{web.url}/all")
        assert status == 302


async def test_only_your_own_images_per_server(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    mine = await web.upload(h.alice, 2)
    bobs = await web.upload(h.bob, 1)
    theirs = await web.upload(h.owner2, 1, guild=h.other)
    http = await sign_in(web, h.alice)
    async with http:
        status, html = await page(http, f"{web.url}/")
        assert status == 302  # to the first server's gallery
        status, html = await page(http, f"{web.url}/servers/{h.guild.id}")
        shown = set(re.findall(r"/media/([0-9a-f-]{36})/thumbnail", html))
        assert shown == set(mine) and "Banana Club" in html
        # Other Club is not alice's server; bob's and owner2's images are not hers.
        status, _ = await page(http, f"{web.url}/servers/{h.other.id}")
        assert status == 404
        for image_id in (*bobs, *theirs):
            for path in (f"/all/images/{image_id}", f"/media/{image_id}/file",
                         f"/media/{image_id}/thumbnail",
                         f"/servers/{h.guild.id}/images/{image_id}"):  # fmt: skip
                status, _ = await page(http, f"{web.url}{path}")
                assert status == 404, path
        status, html = await page(http, f"{web.url}/servers/{h.guild.id}/images/{mine[0]}")
        assert status == 200 and "pic 0" in html and "30×20" in html and "UTC" in html
        # A human file size (it said "0.0 MB") and the cost in coins.
        size = (await h.app.image_repo.get(mine[0])).metadata["size"]  # type: ignore[union-attr]
        assert f"30×20 · {size} bytes" in html and " MB" not in html
        cost = h.settings.upload_cost
        assert f"<dd>{cost} coin{'s' if cost != 1 else ''}</dd>" in html
        async with http.get(f"{web.url}/media/{mine[0]}/download") as r:
            assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
            assert (await r.read()).startswith(b"\x89PNG")
        status, html = await page(http, f"{web.url}/all", headers={"Accept-Language": "es-ES"})
        assert "Todos los servidores" in html and "2 imágenes" in html
    async with aiohttp.ClientSession() as anonymous:
        status, _ = await page(anonymous, f"{web.url}/media/{mine[0]}/file")
        assert status == 302


async def test_delete_needs_the_forms_csrf_token(web: Web) -> None:
    h = web.h
    await enable_sign_in(web)
    (image_id,) = await web.upload(h.alice, 1)
    http = await sign_in(web, h.alice)
    async with http:
        target = f"{web.url}/servers/{h.guild.id}/images/{image_id}/delete"
        status, html = await page(http, target)
        assert status == 200 and "Delete this image?" in html
        token = CSRF.search(html)
        assert token is not None
        for forged in ({}, {"csrf": "not-the-token"}):
            async with http.post(target, data=forged, allow_redirects=False) as r:
                assert r.status == 403
        assert await h.rows("images") == 1 and len(await h.objects()) == 2
        async with http.post(target, data={"csrf": token.group(1)}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].endswith("?deleted=1")
        assert await h.rows("images") == 0 and await h.objects() == []
        # Signing out is a form too.
        async with http.post(f"{web.url}/logout", data={}, allow_redirects=False) as r:
            assert r.status == 403
        status, html = await page(http, f"{web.url}/all")
        token = CSRF.search(html)
        assert token is not None
        async with http.post(f"{web.url}/logout", data={"csrf": token.group(1)},
                             allow_redirects=False) as r:  # fmt: skip
            assert r.status == 302
        status, _ = await page(http, f"{web.url}/all")
        assert status == 302
