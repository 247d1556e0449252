"""Making images on the web (issue 23, item 7): a form to generate an image in a server, a
form under each of the member's images of that server to edit it, a status page per job
(followed in place by the app's one small script, /static/job.js, which only that page's
CSP allows; a "Check again" link without scripts), and Cancel while the job waits.

Every step is a service's, exactly as on Discord and in the API: `orders.prepare` (the
member's rate-limit turn, the prompt, ratio, model and size, the server's rules and
blocklist, the price, a job slot) then `orders.place` (the member, the wallet, the
reservation, the queue); `cancels.cancel` for Cancel. Forms are CSRF-checked as every
other form of the gallery; a refusal shows the form again with the reason, and costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.i18n import t
from bot.services.errors import ImageNotFound, UserFacingError
from bot.services.generation import GenerationRequest, ImageJobView
from bot.services.jobs import recorded_refund
from bot.services.members import Member, Payer
from bot.services.permissions import Actor
from bot.services.types import JobStatus
from web.context import JOB_SCRIPT, context_of
from web.errors import status_of
from web.language import language_of
from web.pages import (
    _actor,
    _base,
    _card,
    _field,
    message_page,
    render,
    signed_in,
)
from web.security import content_security_policy
from web.sessions import Session, check_csrf

SERVER = "/servers/{server_id:\\d+}"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(f"{SERVER}/make", make_page)
    router.add_post(f"{SERVER}/make", make_image)
    router.add_post(f"{SERVER}/images/{{image_id}}/edit", edit_image)
    router.add_get(f"{SERVER}/jobs/{{job_id}}", job_page)
    router.add_post(f"{SERVER}/jobs/{{job_id}}/cancel", cancel_job)


@signed_in
async def make_page(request: web.Request, session: Session) -> web.StreamResponse:
    _, server = await _actor(request, session)
    return await _form(request, session, server)


@signed_in
async def make_image(request: web.Request, session: Session) -> web.StreamResponse:
    """The generate form: a paid image job ordered as /generate orders it."""
    ctx = context_of(request)
    form = await request.post()
    if not check_csrf(session, _field(form, "csrf")):
        return message_page(request, "web.csrf", 403, "web.error_title")
    actor, server = await _actor(request, session)
    assert server is not None  # every route here is a server's
    values = {name: (_field(form, name) or "").strip() for name in ("prompt", "ratio", "model",
                                                                    "size")}  # fmt: skip
    ratio = values["ratio"] or "1:1"
    model, size = values["model"] or None, values["size"] or None
    try:
        # As Discord says the member is in that server now (their roles: a server's role
        # rule applies here as on Discord).
        identity = await ctx.callers.web_member(session.discord_id, int(server))
        ticket = await ctx.orders.prepare(
            identity, prompt=_field(form, "prompt") or "", model=model, size=size, ratio=ratio,
        )  # fmt: skip

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            return GenerationRequest(
                prompt=ticket.prompt, aspect_ratio=ratio, context=_context(actor),
                model=model, image_size=size,
            )  # fmt: skip

        job = await ctx.orders.place(ticket, build)
    except UserFacingError as error:
        return await _form(request, session, server, values=values, error=error)
    raise web.HTTPSeeOther(f"{_base(server)}/jobs/{job.id}")


@signed_in
async def edit_image(request: web.Request, session: Session) -> web.StreamResponse:
    """The edit form under one of the member's images: a paid job that edits it, ordered as
    the Edit button orders it."""
    ctx = context_of(request)
    form = await request.post()
    if not check_csrf(session, _field(form, "csrf")):
        return message_page(request, "web.csrf", 403, "web.error_title")
    actor, server = await _actor(request, session)
    image = await ctx.gallery.own(actor, request.match_info["image_id"])
    instruction = _field(form, "instruction") or ""
    assert server is not None
    try:
        identity = await ctx.callers.web_member(session.discord_id, int(server))
        ticket = await ctx.orders.prepare(identity, prompt=instruction)

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            ctx.gallery.permissions.check_remix_image(member.actor, image, session.name)
            return await ctx.generation.edit_request(image, ticket.prompt, _context(actor))

        job = await ctx.orders.place(ticket, build)
    except UserFacingError as error:
        return await _form(
            request, session, server, values={"instruction": instruction.strip()},
            error=error, source=_card(image, _base(server)),
        )  # fmt: skip
    raise web.HTTPSeeOther(f"{_base(server)}/jobs/{job.id}")


@signed_in
async def job_page(request: web.Request, session: Session) -> web.StreamResponse:
    """A job's state (followed in place by /static/job.js while it waits or runs); its
    images once made."""
    ctx = context_of(request)
    actor, server = await _actor(request, session)
    view = await ctx.generation.job_of(actor, request.match_info["job_id"])
    return _job_page(
        request, session, server, view, cancelled=request.query.get("cancelled") == "1"
    )


@signed_in
async def cancel_job(request: web.Request, session: Session) -> web.StreamResponse:
    ctx = context_of(request)
    form = await request.post()
    if not check_csrf(session, _field(form, "csrf")):
        return message_page(request, "web.csrf", 403, "web.error_title")
    actor, server = await _actor(request, session)
    job_id = request.match_info["job_id"]
    try:
        await ctx.cancels.cancel(actor, job_id, personal=True)
    except ImageNotFound:
        raise
    except UserFacingError as error:
        # Started or ended meanwhile: its page says why, and shows where it is now.
        view = await ctx.generation.job_of(actor, job_id)
        return _job_page(request, session, server, view, error=error)
    raise web.HTTPSeeOther(f"{_base(server)}/jobs/{job_id}?cancelled=1")


# Helpers ------------------------------------------------------------------------------------


def _job_page(
    request: web.Request,
    session: Session,
    server: str | None,
    view: ImageJobView,
    *,
    cancelled: bool = False,
    error: UserFacingError | None = None,
) -> web.Response:
    """A job's page. While the job waits or runs, the page may run the app's own script that
    follows it (a meta refresh would reload the page under the reader every few seconds:
    axe-core rates that critical, WCAG 2.2.1); without scripts, "Check again" does it."""
    ctx = context_of(request)
    language = language_of(request)
    base = _base(server)
    follow = not view.job.finished
    response = render(
        request, "job.html", status=status_of(error) if error is not None else 200,
        session=session, current=server, base=base, job=_job(view, base, language),
        follow=follow, script=request.app[JOB_SCRIPT], cancelled=cancelled,
        error=t(language, error.key, **error.params) if error is not None else None,
    )  # fmt: skip
    if follow:
        response.headers["Content-Security-Policy"] = content_security_policy(
            ctx.settings, scripts=True
        )
    return response


async def _form(
    request: web.Request,
    session: Session,
    server: str | None,
    *,
    values: dict[str, str] | None = None,
    error: UserFacingError | None = None,
    source: dict[str, Any] | None = None,
) -> web.Response:
    """The generate form (or, with `source`, the edit form of that image again), with its
    price in this server and, after a refusal, why."""
    ctx = context_of(request)
    language = language_of(request)
    catalog = ctx.generation.catalog
    guild_id = int(server) if server is not None else None
    settings = await ctx.orders.settings_of(guild_id)
    try:
        price = ctx.generation.cost_of(default=settings.generation_cost)
    except UserFacingError:
        price = None
    return render(
        request, "make.html", status=status_of(error) if error is not None else 200,
        session=session, current=server, base=_base(server),
        values=values or {}, source=source,
        error=t(language, error.key, **error.params) if error is not None else None,
        ratios=catalog.ratios, models=catalog.models() if catalog.model_option else [],
        sizes=catalog.size_labels() if catalog.size_option else [],
        price=t(language, "gen.coins", coins=price) if price is not None else None,
    )  # fmt: skip


def _context(actor: Actor) -> dict[str, Any]:
    """Where the job was asked for (kept with it): the server, and that it came from the web."""
    return {"guild_id": actor.guild_id, "via": "web"}


def _job(view: ImageJobView, base: str, language: str) -> dict[str, Any]:
    """What the job page shows."""
    job = view.job
    state: dict[str, Any] = {
        "id": job.id,
        "href": f"{base}/jobs/{job.id}",
        "status": job.status.value,
        "prompt": job.request.get("prompt"),
        "position": view.position,
        "cancel": f"{base}/jobs/{job.id}/cancel",
        "images": [_card(image, base) for image in view.images],
        "eta": None,
        "reason": None,
    }
    if view.starts_in is not None:
        at = datetime.now(UTC) + timedelta(seconds=view.starts_in)
        state["eta"] = t(
            language, "web.job_eta", seconds=max(1, round(view.starts_in)),
            time=at.strftime("%H:%M:%S UTC"),
        )  # fmt: skip
    if job.status is JobStatus.FAILED:
        refunded, owed = recorded_refund(job)
        key, params = view.reason or ("api.job_failed", {})
        reason = t(language, key, **params)
        if owed:
            state["reason"] = t(language, "gen.failed_owed", reason=reason, coins=owed)
        elif refunded:
            state["reason"] = t(language, "gen.failed", reason=reason, coins=refunded)
        else:
            state["reason"] = t(language, "gen.failed_free", reason=reason)
    return state
