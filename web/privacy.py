"""`/privacy/export/{token}`: a member's archive behind the short-lived signed link that
`/privacy export` sends them privately (bot.services.privacy). The archive is built when the
link is opened and deleted once sent; nothing of it stays on the server or in the bucket."""

from __future__ import annotations

import asyncio

from aiohttp import web

from web.context import context_of

_CHUNK = 1 << 20


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/privacy/export/{token}", export)


async def export(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    if ctx.privacy is None:
        raise web.HTTPNotFound()
    archive = await ctx.privacy.open_link(request.match_info["token"])
    if archive is None:
        # Forged, expired, or its member's data has been erased since: the same answer.
        raise web.HTTPGone(
            text="This link has expired. Ask for a new one with /privacy export.",
            headers={"Cache-Control": "no-store"},
        )
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": 'attachment; filename="nanobanana-my-data.zip"',
                "Content-Length": str(archive.size),
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        with archive.path.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        archive.discard()
