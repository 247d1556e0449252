"""Security headers on every answer: a strict Content-Security-Policy (no scripts at all, the
app's own styles, images from the app and, with S3/R2, from the bucket's signed URLs), no MIME
sniffing, no framing, no referrer beyond this site. One page is allowed a script: a job's page
(web/making.py) runs the app's own /static/job.js, which follows the job (`scripts=True`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.config import Settings, StorageBackend


def content_security_policy(settings: Settings, *, scripts: bool = False) -> str:
    """The policy; with `scripts`, the app's own script files (never inline ones) may run and
    fetch from the app (a job's page follows its job)."""
    images = ["'self'"]
    endpoint = settings.s3_endpoint
    if settings.storage_backend is StorageBackend.S3 and endpoint:
        parts = urlsplit(endpoint)
        images.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'none'",
            f"img-src {' '.join(images)}",
            "style-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            *(["script-src 'self'", "connect-src 'self'"] if scripts else []),
        ]
    )


def security_headers(settings: Settings) -> Middleware:
    """The middleware that sets the headers (on errors too)."""
    policy = content_security_policy(settings)
    https = (settings.web_base_url or "").startswith("https://")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            _set(error, policy, https)
            raise
        _set(response, policy, https)
        return response

    return middleware


def _set(response: web.StreamResponse, policy: str, https: bool) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", policy)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
