"""The web gallery: sign in with Discord, then your images per server in a responsive grid (in
pages), each in full size with its details, a download and a delete (confirmed, CSRF-checked).

Pages are rendered on the server and need no JavaScript (the CSP allows none). Images come
through `/media/...` after an access check: a redirect to a short-lived signed URL (S3/R2) or
the bytes (local storage); never a guessable public address.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.i18n import t
from bot.i18n.formats import file_size
from bot.services.errors import ImageNotFound, UserFacingError
from bot.services.permissions import Actor
from bot.services.types import Image
from web.api import image_response
from web.context import STYLESHEET, WebContext, context_of
from web.language import language_of
from web.oauth import DiscordOAuth
from web.sessions import (
    Session,
    Sessions,
    SignInError,
    check_csrf,
    redirect_location,
    safe_next,
)

PAGE_SIZE = 24
ALL = "all"

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", home)
    router.add_get("/login", login)
    router.add_get("/auth/callback", callback)
    router.add_post("/logout", logout)
    router.add_get("/all", grid)
    router.add_get("/servers/{server_id:\\d+}", grid)
    router.add_get("/all/images/{image_id}", image_page)
    router.add_get("/servers/{server_id:\\d+}/images/{image_id}", image_page)
    router.add_get("/all/images/{image_id}/delete", delete_page)
    router.add_post("/all/images/{image_id}/delete", delete_image)
    router.add_get("/servers/{server_id:\\d+}/images/{image_id}/delete", delete_page)
    router.add_post("/servers/{server_id:\\d+}/images/{image_id}/delete", delete_image)
    router.add_get("/media/{image_id}/{part:(file|thumbnail|download)}", media)
    router.add_get(
        "/servers/{server_id:\\d+}/characters/{character_id}/{number:\\d{1,2}}", character_image
    )


def sessions_of(ctx: WebContext) -> Sessions:
    return Sessions(ctx.secret, secure=ctx.secure_cookies)


# Where `sessions` leaves the request's session (absent: not signed in).
_SESSION = web.RequestKey("session", Session)
# Paths that never need to know who is signed in.
_NO_SESSION = ("/api/", "/static/", "/healthz")


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Looks the visitor's session up on the server once per page request (a cookie whose
    session was signed out, or has expired, signs nobody in)."""
    if not request.path.startswith(_NO_SESSION):
        session = await _load_session(request)
        if session is not None:
            request[_SESSION] = session
    return await handler(request)


async def _load_session(request: web.Request) -> Session | None:
    ctx = context_of(request)
    session_id = sessions_of(ctx).session_id(request)
    return None if session_id is None else await ctx.web_sessions.find(session_id)


def session_of(request: web.Request) -> Session | None:
    """The signed-in visitor of a page request (see `sessions`)."""
    return request.get(_SESSION)


def oauth_of(ctx: WebContext) -> DiscordOAuth | None:
    settings = ctx.settings
    if settings.discord_client_id is None or settings.discord_client_secret is None:
        return None
    return DiscordOAuth(
        client_id=settings.discord_client_id,
        client_secret=settings.discord_client_secret.get_secret_value(),
        base_url=settings.discord_oauth_base_url,
    )


def redirect_uri(ctx: WebContext) -> str:
    """The OAuth2 redirect URL to register in the Developer Portal."""
    return ctx.url("/auth/callback")


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """A page in the visitor's language, with what every page shows."""
    ctx = context_of(request)
    language = language_of(request)
    session = values.pop("session", None) or session_of(request)
    page = {
        "lang": language,
        "t": functools.partial(t, language),
        "session": session,
        "servers": _servers(ctx, session),
        "css": request.app[STYLESHEET],
        "current": None,
        **values,
    }
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def message_page(request: web.Request, key: str, status: int, title_key: str) -> web.Response:
    return render(request, "message.html", status=status, title_key=title_key, key=key)


def _servers(ctx: WebContext, session: Session | None) -> list[dict[str, Any]]:
    if session is None:
        return []
    servers = []
    for server_id in session.server_ids:
        info = ctx.directory.server(server_id)
        if info is not None and ctx.callers.permissions.guild_allowed(server_id):
            servers.append({"id": str(server_id), "name": info.name})
    return servers


def signed_in(
    handler: Callable[[web.Request, Session], Awaitable[web.StreamResponse]],
) -> PageHandler:
    """Pages for signed-in visitors: others go to sign in, and come back after."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            raise web.HTTPFound(f"/login?{_next_query(request)}")
        try:
            return await handler(request, session)
        except ImageNotFound:
            return message_page(request, "web.not_found", 404, "web.not_found_title")

    return wrapper


def _next_query(request: web.Request) -> str:
    return urlencode({"next": str(request.rel_url)})


# Sign-in ------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    session = session_of(request)
    if session is not None:
        servers = _servers(ctx, session)
        raise web.HTTPFound(f"/servers/{servers[0]['id']}" if servers else "/all")
    return render(request, "home.html", sign_in=oauth_of(ctx) is not None)


async def login(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    oauth = oauth_of(ctx)
    if oauth is None:
        return message_page(request, "web.sign_in_off", 503, "web.sign_in_off_title")
    response = web.HTTPFound("/")
    state = sessions_of(ctx).begin_sign_in(response, safe_next(request.query.get("next", "/")))
    response.headers["Location"] = oauth.authorize_url(state=state, redirect_uri=redirect_uri(ctx))
    raise response


async def callback(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    oauth = oauth_of(ctx)
    if oauth is None:
        return message_page(request, "web.sign_in_off", 503, "web.sign_in_off_title")
    sessions = sessions_of(ctx)
    query = request.query
    try:
        next_path = sessions.finish_sign_in(request, query.get("state", ""))
        if "error" in query:
            raise SignInError("web.signin_denied")
        code = query.get("code", "")
        if not code:
            raise SignInError("web.signin_failed")
        account = await oauth.sign_in(code, redirect_uri(ctx))
    except SignInError as error:
        page = message_page(request, error.key, 400, "web.error_title")
        sessions.forget_sign_in(page)
        return page
    # The servers the visitor shares with the bot (and that the bot may serve).
    shared = [
        g.id
        for g in account.guilds
        if ctx.directory.server(g.id) is not None and ctx.callers.permissions.guild_allowed(g.id)
    ]
    # Checked again as the header is written (see `redirect_location`).
    response = web.HTTPFound(redirect_location(next_path))
    sessions.forget_sign_in(response)
    opened = await ctx.web_sessions.open(account.id, account.name, shared)
    sessions.start(response, opened.id)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    session = session_of(request)
    form = await request.post()
    if session is not None and not check_csrf(session, _field(form, "csrf")):
        return message_page(request, "web.csrf", 403, "web.error_title")
    if session is not None:
        # Ended on the server: a copy of the cookie signs nobody in from now on.
        await ctx.web_sessions.close(session.id)
    response = web.HTTPFound("/")
    sessions_of(ctx).end(response)
    raise response


# The gallery --------------------------------------------------------------------------------


async def _actor(request: web.Request, session: Session) -> tuple[Actor, str | None]:
    """The visitor acting in the server of the URL (one of their servers, where they are
    still a member) or in none."""
    ctx = context_of(request)
    server = request.match_info.get("server_id")
    guild_id = int(server) if server is not None else None
    try:
        if guild_id is not None and not await ctx.web_sessions.is_member(session, guild_id):
            raise ImageNotFound()
        actor = await ctx.callers.visitor(session.discord_id, session.name, guild_id)
    except UserFacingError:
        raise ImageNotFound() from None
    return actor, server


def _base(server: str | None) -> str:
    return f"/servers/{server}" if server is not None else f"/{ALL}"


@signed_in
async def grid(request: web.Request, session: Session) -> web.StreamResponse:
    ctx = context_of(request)
    actor, server = await _actor(request, session)
    try:
        page = await ctx.gallery.list_own(
            actor, cursor=request.query.get("cursor") or None, limit=PAGE_SIZE
        )
    except UserFacingError:
        raise web.HTTPFound(_base(server)) from None
    total = await ctx.gallery.count_own(actor)
    base = _base(server)
    characters = []
    if server is not None and ctx.characters is not None and not request.query.get("cursor"):
        # The server's character library: the visitor's own and the shared style sheet.
        characters = [
            {"name": s.character.name, "shared": s.character.shared,
             "count": len(s.character.refs),
             "src": f"{base}/characters/{s.character.id}/0"}
            for s in await ctx.characters.listing(actor, int(server))
        ]  # fmt: skip
    return render(
        request, "grid.html", session=session, current=server or ALL, base=base,
        images=[_card(i, base) for i in page.items], total=total, characters=characters,
        next_url=f"{base}?cursor={page.next_cursor}" if page.next_cursor else None,
        first_page=not request.query.get("cursor"),
        deleted=request.query.get("deleted") == "1",
    )  # fmt: skip


@signed_in
async def image_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _one_image(request, session, "image.html")


@signed_in
async def delete_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _one_image(request, session, "delete.html")


async def _one_image(request: web.Request, session: Session, template: str) -> web.Response:
    """A page about one of the member's own images (its view, or the delete confirmation)."""
    ctx = context_of(request)
    actor, server = await _actor(request, session)
    image = await ctx.gallery.own(actor, request.match_info["image_id"])
    base = _base(server)
    # The edit form (web/making.py) where the image may be edited: in its own server.
    editable = server is not None and ctx.callers.permissions.image_actions(actor, image).remix
    return render(request, template, session=session, current=server or ALL, base=base,
                  image=_details(image, base, language_of(request), ctx.generation.catalog.name_of),
                  editable=editable)  # fmt: skip


@signed_in
async def delete_image(request: web.Request, session: Session) -> web.StreamResponse:
    ctx = context_of(request)
    form = await request.post()
    if not check_csrf(session, _field(form, "csrf")):
        return message_page(request, "web.csrf", 403, "web.error_title")
    actor, server = await _actor(request, session)
    await ctx.gallery.delete_own(actor, request.match_info["image_id"])
    raise web.HTTPSeeOther(f"{_base(server)}?deleted=1")


@signed_in
async def media(request: web.Request, session: Session) -> web.StreamResponse:
    """An image's bytes for a signed-in visitor: their own images only."""
    ctx = context_of(request)
    actor = await ctx.callers.visitor(session.discord_id, session.name, None)
    image = await ctx.gallery.own(actor, request.match_info["image_id"])
    part = request.match_info["part"]
    # A bucket answers with a redirect to a signed URL (raised); local storage with bytes.
    response = await image_response(ctx, image, thumbnail=part == "thumbnail")
    if part == "download":
        name = f"nanobanana-{image.short_id}.{_extension(response.content_type)}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@signed_in
async def character_image(request: web.Request, session: Session) -> web.StreamResponse:
    """A reference image of a character the visitor may use in that server."""
    ctx = context_of(request)
    if ctx.characters is None:
        raise web.HTTPNotFound()
    actor, server = await _actor(request, session)
    assert server is not None
    character = await ctx.characters.by_id(actor, int(server), request.match_info["character_id"])
    image = await ctx.characters.reference(character, int(request.match_info["number"]))
    return web.Response(
        body=image.data, content_type=image.mime_type,
        headers={"Cache-Control": "private, max-age=300"},
    )  # fmt: skip


# Helpers ------------------------------------------------------------------------------------


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _extension(mime: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime, "png")


def _card(image: Image, base: str) -> dict[str, Any]:
    return {
        "id": image.id,
        "href": f"{base}/images/{image.id}",
        "thumbnail": f"/media/{image.id}/thumbnail",
        "label": image.title or image.prompt or "",
        "width": (image.dimensions or (0, 0))[0],
        "height": (image.dimensions or (0, 0))[1],
    }


def _details(
    image: Image, base: str, language: str, model_name: Callable[[str | None], str]
) -> dict[str, Any]:
    meta = image.metadata
    model, size = meta.get("model"), meta.get("size")
    return {
        **_card(image, base),
        "file": f"/media/{image.id}/file",
        "download": f"/media/{image.id}/download",
        "delete": f"{base}/images/{image.id}/delete",
        "title": image.title,
        "prompt": image.prompt,
        "description": image.description,
        "kind": image.type.value,
        # The model's name as members know it, not its API id.
        "model": model_name(model) if isinstance(model, str) and model else None,
        "size": meta.get("image_size"),
        "dimensions": "×".join(str(n) for n in image.dimensions) if image.dimensions else None,
        "file_size": file_size(language, size) if isinstance(size, int) else None,
        "coins": t(language, "gen.coins", coins=image.coins_used),
        "created": image.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "created_iso": image.created_at.isoformat(),
    }
