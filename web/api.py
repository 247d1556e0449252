"""The REST API under /api/v1 (the seed's "Next Phase"), for members' scripts and integrations.

Every call carries `Authorization: Bearer <token>` (made with `/token` in a server) and acts as
that member in that server, through the same services as the slash commands: the same checks,
reservations, limits and refunds. Images reached this way are the caller's own images of the
token's server; anything else is 404. Answers are JSON; errors are described in web/errors.py.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.services.callers import ApiCaller
from bot.services.characters import CharacterService
from bot.services.conversations import ConversationService
from bot.services.errors import (
    InvalidInput,
    Unauthenticated,
    UserFacingError,
)
from bot.services.generation import GenerationRequest, ImageJobView
from bot.services.media import Declared
from bot.services.members import Member, Payer, Purpose
from bot.services.settings import MAX_BATCH
from bot.services.types import Image, ImageType
from web.context import WebContext, context_of
from web.errors import json_error, service_error
from web.forms import check_length, read_form, read_json_object, text_field
from web.language import language_of
from web.openapi import openapi_document
from web.remote import client_address
from web.serializers import (
    character_json,
    conversation_json,
    image_json,
    job_json,
    snowflake,
    stats_json,
    transaction_json,
    user_json,
    wallet_json,
)

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
DEFAULT_LIMIT = 24
KINDS = {"all": None, "generated": ImageType.GENERATED, "uploaded": ImageType.UPLOADED}
_GENERATE_FIELDS = frozenset({"prompt", "aspect_ratio", "model", "size", "count"})
_GENERATE_FILES = ("image", "image2")
_CHARACTER_FILES = ("image", "image2", "image3", "image4")
_SLACK = 64 * 1024


def add_routes(router: web.UrlDispatcher) -> None:
    """The API's routes (web/openapi.py describes each; a test checks they match)."""
    router.add_get(f"{PREFIX}/openapi.json", openapi)
    router.add_get(f"{PREFIX}/me", me)
    router.add_get(f"{PREFIX}/images", list_images)
    router.add_post(f"{PREFIX}/images/upload", upload_image)
    router.add_post(f"{PREFIX}/images/generate", generate_image)
    router.add_get(f"{PREFIX}/images/{{image_id}}", get_image)
    router.add_delete(f"{PREFIX}/images/{{image_id}}", delete_image)
    router.add_get(f"{PREFIX}/images/{{image_id}}/file", image_file)
    router.add_get(f"{PREFIX}/images/{{image_id}}/thumbnail", image_thumbnail)
    router.add_get(f"{PREFIX}/jobs/{{job_id}}", get_job)
    router.add_post(f"{PREFIX}/jobs/{{job_id}}/cancel", cancel_job)
    router.add_get(f"{PREFIX}/characters", list_characters)
    router.add_post(f"{PREFIX}/characters", create_character)
    router.add_delete(f"{PREFIX}/characters/{{character_id}}", delete_character)
    router.add_post(f"{PREFIX}/conversations", create_conversation)
    router.add_get(f"{PREFIX}/conversations/{{conversation_id}}", get_conversation)
    router.add_post(f"{PREFIX}/conversations/{{conversation_id}}/turns", add_turn)
    router.add_post(f"{PREFIX}/conversations/{{conversation_id}}/undo", undo_turn)
    router.add_post(f"{PREFIX}/conversations/{{conversation_id}}/branch", branch_conversation)


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/: service refusals, HTTP errors and crashes as JSON errors."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    language = language_of(request)
    try:
        return await handler(request)
    except UserFacingError as error:
        return service_error(error, language)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }.get(error.status, "http_error")
        return json_error(error.status, code, error.reason)
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("API error id=%s %s %s", error_id, request.method, request.path)
        return json_error(
            500, "internal_error", f"Something went wrong on our side (error id {error_id}).",
            error_id=error_id,
        )  # fmt: skip


# Authentication ---------------------------------------------------------------------------


async def authenticate(request: web.Request) -> ApiCaller:
    """The caller of a request, counted against its token's rate limit.

    A valid token goes through, counted against its own limit only. Failed checks are
    counted per client address (behind WEB_TRUSTED_PROXIES, the address they forward):
    past the limit, that address's failures get 429 instead of 401."""
    ctx = context_of(request)
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    try:
        if not header:
            raise Unauthenticated("api.token_missing")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("api.token_invalid")
        caller = await ctx.callers.from_token(raw.strip())
    except Unauthenticated:
        address = client_address(
            request.remote,
            request.headers.getall("X-Forwarded-For", ()),
            ctx.settings.web_trusted_proxies,
        )
        ctx.auth_failures.hit(address)  # TooSoon (429) past the limit
        raise
    ctx.api_limit.hit(caller.token.id)
    return caller


# Handlers ---------------------------------------------------------------------------------


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(context_of(request).base_url))


async def me(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    overview = await ctx.wallets.overview(caller.actor)
    server = ctx.directory.server(caller.token.guild_id)
    return web.json_response(
        {
            "user": user_json(overview.user),
            "server": {
                "id": snowflake(caller.token.guild_id),
                "name": server.name if server else None,
            },
            "token": {
                "id": caller.token.id,
                "name": caller.token.name,
                "created_at": caller.token.created_at.isoformat(),
            },
            "wallets": [wallet_json(w) for w in overview.wallets],
            "stats": stats_json(overview.stats),
            "recent_transactions": [transaction_json(row) for row in overview.recent],
        }
    )


async def list_images(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    query = request.query
    kind_name = query.get("type", "all").strip().lower()
    if kind_name not in KINDS:
        raise InvalidInput("api.bad_type", choices=", ".join(KINDS))
    server = query.get("server")
    if server is not None:
        if not server.isdigit():
            raise InvalidInput("api.bad_server")
        if int(server) != caller.token.guild_id:
            # A token reaches only the server it was made in.
            raise InvalidInput("api.other_server")
    limit = _int(query.get("limit"), DEFAULT_LIMIT)
    page = await ctx.gallery.list_own(
        caller.actor, KINDS[kind_name], cursor=query.get("cursor"), limit=limit
    )
    next_link = None
    if page.next_cursor is not None:
        next_link = str(request.rel_url.update_query(cursor=page.next_cursor))
    return web.json_response(
        {
            "images": [image_json(i, _web_link(ctx, i)) for i in page.items],
            "next_cursor": page.next_cursor,
            "links": {"next": next_link},
        }
    )


async def get_image(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    image = await ctx.gallery.own(caller.actor, request.match_info["image_id"])
    return web.json_response(image_json(image, _web_link(ctx, image)))


async def delete_image(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    await ctx.gallery.delete_own(caller.actor, request.match_info["image_id"])
    return web.Response(status=204)


async def image_file(request: web.Request) -> web.StreamResponse:
    return await _serve(request, thumbnail=False)


async def image_thumbnail(request: web.Request) -> web.StreamResponse:
    return await _serve(request, thumbnail=True)


async def _serve(request: web.Request, *, thumbnail: bool) -> web.StreamResponse:
    ctx = context_of(request)
    caller = await authenticate(request)
    image = await ctx.gallery.own(caller.actor, request.match_info["image_id"])
    return await image_response(ctx, image, thumbnail=thumbnail)


async def image_response(ctx: WebContext, image: Image, *, thumbnail: bool) -> web.Response:
    """An image the caller may see: a redirect to a short-lived signed URL in the bucket, or
    its bytes from local storage. Never cached by shared caches."""
    link = await ctx.gallery.link(image, thumbnail=thumbnail)
    headers = {"Cache-Control": "private, max-age=300"}
    if link is not None:
        raise web.HTTPFound(link, headers=headers)
    data = await ctx.gallery.read(image, thumbnail=thumbnail)
    mime = "image/webp" if thumbnail and image.thumbnail_key else _mime(image)
    return web.Response(body=data, content_type=mime, headers=headers)


async def upload_image(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    limit = ctx.settings.max_upload_bytes
    # The same steps as /upload: the per-member limit (the server's rate, the same bucket),
    # the text, the server's rules and the price before the bytes; then UploadService checks
    # and stores them.
    ctx.members.take_turn(caller.actor.discord_id, caller.token.guild_id, "upload")
    check_length(request, limit + _SLACK)
    form = await read_form(request, file_fields=("image",), max_file_bytes=limit)
    title, description = form.fields.get("title"), form.fields.get("description")
    ctx.uploads.validate_text(title, description)
    upload = form.files.get("image")
    if upload is None:
        raise InvalidInput("api.missing_field", field="image")
    payer = await ctx.members.payer(caller.member, Purpose.UPLOAD)
    payer.check_affordable()
    result = await ctx.uploads.upload(
        payer, upload.data, filename=upload.filename, title=title, description=description
    )
    body = image_json(result.image, _web_link(ctx, result.image))
    return web.json_response(
        {"image": body, "balance": result.balance},
        status=201,
        headers={"Location": body["links"]["self"]},
    )


async def _order_body(
    request: web.Request, ctx: WebContext, fields: frozenset[str] | set[str]
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """A paid order's body: JSON, or multipart with input images (`image`, `image2`) within
    the upload limit; any field but `fields` refused. Returns (values, [(name, bytes)])."""
    limit = ctx.settings.max_upload_bytes
    check_length(request, len(_GENERATE_FILES) * limit + _SLACK)
    files: list[tuple[str, bytes]] = []
    if request.content_type == "multipart/form-data":
        form = await read_form(request, file_fields=_GENERATE_FILES, max_file_bytes=limit)
        values: dict[str, Any] = dict(form.fields)
        files = [(form.files[n].filename, form.files[n].data) for n in _GENERATE_FILES
                 if n in form.files]  # fmt: skip
    else:
        values = await read_json_object(request)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidInput("api.unknown_field", field=unknown[0][:50])
    return values, files


async def generate_image(request: web.Request) -> web.Response:
    """A paid image job, ordered exactly as /generate orders it (bot.services.orders): the
    same rate limit, checks, input pipeline, price and reservation."""
    ctx = context_of(request)
    caller = await authenticate(request)
    values, files = await _order_body(request, ctx, _GENERATE_FIELDS)
    prompt = text_field(values, "prompt", required=True) or ""
    ratio = text_field(values, "aspect_ratio", default="1:1") or "1:1"
    model = text_field(values, "model")
    size = text_field(values, "size")
    count = _count(values.get("count"))
    ticket = await ctx.orders.prepare(
        caller.actor.identity, prompt=prompt, model=model, size=size, ratio=ratio,
        declared=[Declared(name, len(data)) for name, data in files], count=count,
    )  # fmt: skip

    async def build(member: Member, payer: Payer) -> GenerationRequest:
        return GenerationRequest(
            prompt=ticket.prompt, aspect_ratio=ratio, inputs=await ctx.orders.images(files),
            context={"guild_id": caller.token.guild_id, "via": "api", "token_id": caller.token.id},
            model=model, image_size=size,
        )  # fmt: skip

    if ticket.count > 1:
        # A batch: each image its own job (charged, run and refunded on its own).
        jobs = await ctx.orders.place_batch(
            ticket, build, [None] * ticket.count, member=caller.member
        )
    else:
        jobs = [await ctx.orders.place(ticket, build, member=caller.member)]
    bodies = [
        job_json(ImageJobView(job.row, ctx.generation.position(job.id)),
                 language=language_of(request))
        for job in jobs
    ]  # fmt: skip
    return web.json_response(
        {"job": bodies[0], "jobs": bodies, "balance": jobs[-1].balance},
        status=202,
        headers={"Location": bodies[0]["links"]["self"]},
    )


async def get_job(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    view = await ctx.generation.job_of(caller.actor, request.match_info["job_id"])
    first = view.images[0] if view.images else None
    body = job_json(
        view, language=language_of(request),
        web_url=_web_link(ctx, first) if first is not None else None,
    )  # fmt: skip
    return web.json_response(body)


async def cancel_job(request: web.Request) -> web.Response:
    """Cancel one of the caller's waiting jobs (bot.services.cancels): refunded at once."""
    ctx = context_of(request)
    caller = await authenticate(request)
    job_id = request.match_info["job_id"]
    # Someone else's job is "not found", as in GET.
    await ctx.generation.job_of(caller.actor, job_id)
    cancelled = await ctx.cancels.cancel(caller.actor, job_id, personal=True)
    view = await ctx.generation.job_of(caller.actor, job_id)
    body = job_json(view, language=language_of(request))
    return web.json_response({"job": body, "balance": cancelled.balance or 0})


def _characters(ctx: WebContext) -> CharacterService:
    if ctx.characters is None:
        raise web.HTTPNotFound()
    return ctx.characters


async def list_characters(request: web.Request) -> web.Response:
    """Your characters in the token's server, and the server's shared ones."""
    ctx = context_of(request)
    caller = await authenticate(request)
    saved = await _characters(ctx).listing(caller.actor, caller.token.guild_id)
    return web.json_response(
        {"characters": [character_json(s.character, deletable=s.deletable) for s in saved]}
    )


async def create_character(request: web.Request) -> web.Response:
    """A new character of yours from up to four images (multipart), as /character save."""
    ctx = context_of(request)
    caller = await authenticate(request)
    characters = _characters(ctx)
    ctx.members.take_turn(caller.actor.discord_id, caller.token.guild_id, "other")
    limit = ctx.settings.max_upload_bytes
    check_length(request, len(_CHARACTER_FILES) * limit + _SLACK)
    form = await read_form(request, file_fields=_CHARACTER_FILES, max_file_bytes=limit)
    unknown = sorted(set(form.fields) - {"name", "shared"})
    if unknown:
        raise InvalidInput("api.unknown_field", field=unknown[0][:50])
    name = characters.check_name(text_field(form.fields, "name", required=True) or "")
    shared = (text_field(form.fields, "shared") or "").lower() in ("1", "true", "yes")
    files = [(form.files[n].filename, form.files[n].data) for n in _CHARACTER_FILES
             if n in form.files]  # fmt: skip
    images = await ctx.orders.images(files)
    character = await characters.save(
        caller.actor, caller.token.guild_id, name, images, shared=shared
    )
    return web.json_response({"character": character_json(character, deletable=True)}, status=201)


async def delete_character(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    characters = _characters(ctx)
    character = await characters.by_id(
        caller.actor, caller.token.guild_id, request.match_info["character_id"]
    )
    await characters.delete(caller.actor, character)
    return web.Response(status=204)


# Conversations (issue 22) -----------------------------------------------------------------

_TURN_FIELDS = frozenset({"prompt"})


def _conversations(ctx: WebContext) -> ConversationService:
    if ctx.conversations is None:
        raise web.HTTPNotFound()
    return ctx.conversations


async def create_conversation(request: web.Request) -> web.Response:
    """A conversation (no turn yet) from one of your images of the token's server."""
    ctx = context_of(request)
    caller = await authenticate(request)
    values = await read_json_object(request)
    unknown = sorted(set(values) - {"image_id"})
    if unknown:
        raise InvalidInput("api.unknown_field", field=unknown[0][:50])
    image_id = text_field(values, "image_id", required=True) or ""
    image = await ctx.gallery.find(caller.actor, image_id)
    conversations = _conversations(ctx)
    conversation = await conversations.start(caller.actor, image.id)
    body = conversation_json(await conversations.view_of(conversation))
    return web.json_response(body, status=201, headers={"Location": body["links"]["self"]})


async def get_conversation(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await authenticate(request)
    view = await _conversations(ctx).view(
        caller.actor, request.match_info["conversation_id"], personal=True
    )
    return web.json_response(conversation_json(view))


async def add_turn(request: web.Request) -> web.Response:
    """The next turn: a paid image job ordered as an Edit is (orders, through the
    conversation service), sent with the conversation so far; JSON, or multipart with
    reference images (`image`, `image2`)."""
    ctx = context_of(request)
    caller = await authenticate(request)
    conversations = _conversations(ctx)
    values, files = await _order_body(request, ctx, _TURN_FIELDS)
    prompt = text_field(values, "prompt", required=True) or ""
    view = await conversations.view(
        caller.actor, request.match_info["conversation_id"], personal=True
    )
    target = await conversations.target_for(view.conversation)
    ticket = await conversations.prepare(
        caller.actor.identity, target, prompt,
        declared=[Declared(name, len(data)) for name, data in files],
    )  # fmt: skip
    context = {"guild_id": caller.token.guild_id, "via": "api", "token_id": caller.token.id}
    job, conversation, turn = await conversations.place(ticket, target, files, context=context)
    job_body = job_json(
        ImageJobView(job.row, ctx.generation.position(job.id)), language=language_of(request)
    )
    body = {
        "job": job_body,
        "turn": {"id": turn.id, "position": turn.position},
        "conversation": conversation_json(await conversations.view_of(conversation)),
        "balance": job.balance,
    }
    return web.json_response(body, status=202, headers={"Location": job_body["links"]["self"]})


async def undo_turn(request: web.Request) -> web.Response:
    """Back one turn (free: nothing is refunded or deleted)."""
    ctx = context_of(request)
    caller = await authenticate(request)
    conversations = _conversations(ctx)
    conversation_id = request.match_info["conversation_id"]
    undone = await conversations.undo(caller.actor, conversation_id, personal=True)
    view = await conversations.view(caller.actor, conversation_id, personal=True)
    return web.json_response({"undone": undone, "conversation": conversation_json(view)})


async def branch_conversation(request: web.Request) -> web.Response:
    """A new conversation from any turn of this one (free)."""
    ctx = context_of(request)
    caller = await authenticate(request)
    values = await read_json_object(request) if request.can_read_body else {}
    unknown = sorted(set(values) - {"position"})
    if unknown:
        raise InvalidInput("api.unknown_field", field=unknown[0][:50])
    position = values.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        raise InvalidInput("conv.turn_gone")
    conversations = _conversations(ctx)
    branch = await conversations.branch(
        caller.actor, request.match_info["conversation_id"], position, personal=True
    )
    body = conversation_json(await conversations.view_of(branch))
    return web.json_response(body, status=201, headers={"Location": body["links"]["self"]})


# Helpers ----------------------------------------------------------------------------------


def _count(value: Any) -> int:
    """`count` of a generate order (JSON number or form text; default 1): how many images.
    Its range is the order's to check (bot.services.orders)."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 10:
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidInput("batch.count", high=MAX_BATCH)


def _int(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput("api.bad_limit", max=100) from None


def _mime(image: Image) -> str:
    mime = str(image.metadata.get("mime_type", "image/png"))
    # Only image types this bot stores are ever served.
    return mime if mime in ("image/png", "image/jpeg", "image/webp") else "image/png"


def _web_link(ctx: WebContext, image: Image) -> str | None:
    """The image's page in the web gallery."""
    if image.guild_id is None:
        return ctx.url(f"/all/images/{image.id}")
    return ctx.url(f"/servers/{image.guild_id}/images/{image.id}")
