"""The web server in the bot's process: aiohttp's own, started and stopped with the bot.

If its port is taken, the bot still runs: the reason and the fix are logged in one line and the
Discord links to the gallery are left out (see `WebServer.start`).
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from web import api, making, pages, privacy
from web import metrics as observability
from web.context import CONTEXT, JOB_SCRIPT, STYLESHEET, WebContext
from web.errors import json_error
from web.security import security_headers

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# Room for the multipart framing and form fields around the largest files a request may carry
# (generation takes two images).
_BODY_SLACK = 1024 * 1024


def build_app(context: WebContext) -> web.Application:
    """The aiohttp application: API, pages, static files, and their middlewares."""
    settings = context.settings
    app = web.Application(
        middlewares=[security_headers(settings), api.api_errors, pages.sessions],
        client_max_size=2 * settings.max_upload_bytes + _BODY_SLACK,
    )
    app[CONTEXT] = context
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/healthz", health)
    observability.add_routes(app, context.observed)
    api.add_routes(app.router)
    pages.add_routes(app.router)
    privacy.add_routes(app.router)
    making.add_routes(app.router)
    static = app.router.add_static("/static/", HERE / "static", append_version=True)
    # Versioned once (append_version hashes the file on every url_for).
    app[STYLESHEET] = str(static.url_for(filename="gallery.css"))
    app[JOB_SCRIPT] = str(static.url_for(filename="job.js"))
    return app


async def health(request: web.Request) -> web.Response:
    """What `python -m bot check` and load balancers probe."""
    return web.json_response({"status": "ok", "service": "nanobanana-bot"})


class WebServer:
    """Serves `build_app(context)` on host:port (port 0: any free port, for tests)."""

    def __init__(self, context: WebContext, *, host: str, port: int) -> None:
        self.context = context
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        """The bound address, e.g. http://127.0.0.1:8080."""
        return self.context.bound_url

    async def start(self) -> bool:
        """Listen; False (logged with what to do) when the address can't be used."""
        runner = web.AppRunner(
            build_app(self.context), access_log=None, handle_signals=False, shutdown_timeout=5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            if error.errno == errno.EADDRINUSE:
                log.error(
                    "web server not started: %s:%d is already in use (another program, or "
                    "another copy of the bot) -> set WEB_PORT to a free port, or WEB_PORT=0 to "
                    "turn the web gallery and API off; the bot runs without them",
                    self.host,
                    self.port,
                )
            else:
                log.error(
                    "web server not started on %s:%d (%s) -> check WEB_HOST and WEB_PORT; the "
                    "bot runs without it",
                    self.host,
                    self.port,
                    error.strerror or error,
                )
            return False
        self._runner = runner
        host, port = _bound(runner)
        self.context.bound_url = f"http://{host}:{port}"
        log.info(
            "web gallery and API on %s (public address %s)",
            self.context.bound_url,
            self.context.base_url,
        )
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


def _bound(runner: web.AppRunner) -> tuple[str, int]:
    address = runner.addresses[0]
    host, port = str(address[0]), int(address[1])
    return (f"[{host}]" if ":" in host else host), port


__all__ = ["WebServer", "build_app", "json_error"]
