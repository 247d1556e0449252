"""/metrics (Prometheus's text format) and /readyz, on the web server or on a port of their own
(METRICS_PORT), guarded by METRICS_TOKEN and METRICS_ALLOW.

Without either setting only local clients are answered, and not through a reverse proxy: a
request that carries `X-Forwarded-For` or `Forwarded` came from elsewhere.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.config import Settings
from bot.services.metrics import CONTENT_TYPE, Metrics, Readiness

log = logging.getLogger(__name__)


@dataclass
class Observed:
    """What the endpoints serve: the process's metrics and its readiness."""

    settings: Settings
    metrics: Metrics
    readiness: Callable[[], Awaitable[Readiness]]


OBSERVED = web.AppKey("observed", Observed)
_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def refusal(request: web.Request, settings: Settings) -> web.Response | None:
    """Why this request may not read /metrics (401 or 403), or None when it may."""
    token = settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.json_response(
                {"error": "unauthorized", "message": "send Authorization: Bearer METRICS_TOKEN"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    try:
        address = ipaddress.ip_address((request.remote or "").split("%")[0])
    except ValueError:
        address = None
    if settings.metrics_allow:
        networks = [ipaddress.ip_network(n, strict=False) for n in settings.metrics_allow]
        if address is None or not any(address in network for network in networks):
            return _forbidden("your address is not in METRICS_ALLOW")
    elif token is None and (
        address is None
        or not address.is_loopback
        or any(header in request.headers for header in _PROXY_HEADERS)
    ):
        return _forbidden("set METRICS_TOKEN or METRICS_ALLOW to read metrics from elsewhere")
    return None


def _forbidden(message: str) -> web.Response:
    return web.json_response({"error": "forbidden", "message": message}, status=403)


async def metrics(request: web.Request) -> web.Response:
    observed = request.app[OBSERVED]
    refused = refusal(request, observed.settings)
    if refused is not None:
        return refused
    body = await observed.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def readyz(request: web.Request) -> web.Response:
    """200 when ready to take interactions, else 503; says which check failed."""
    readiness = await request.app[OBSERVED].readiness()
    return web.json_response(readiness.as_dict(), status=200 if readiness.ready else 503)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "nanobanana-bot"})


def add_routes(app: web.Application, observed: Observed | None) -> None:
    """/readyz, and /metrics unless it has a port of its own (METRICS_PORT)."""
    if observed is None:
        return
    app[OBSERVED] = observed
    app.router.add_get("/readyz", readyz)
    if observed.settings.metrics_port is None:
        app.router.add_get("/metrics", metrics)


class MetricsServer:
    """/metrics, /healthz and /readyz on METRICS_HOST:METRICS_PORT."""

    def __init__(self, observed: Observed) -> None:
        self.observed = observed
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> bool:
        """Listen; False (logged with what to do) when the address can't be used."""
        settings = self.observed.settings
        app = web.Application()
        app[OBSERVED] = self.observed
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/readyz", readyz)
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
        await runner.setup()
        port = settings.metrics_port or 0
        try:
            await web.TCPSite(runner, settings.metrics_host, port).start()
        except OSError as error:
            await runner.cleanup()
            taken = error.errno == errno.EADDRINUSE
            log.error(
                "metrics not served: %s:%d %s -> set METRICS_PORT to a free port (or unset it "
                "to serve /metrics on the web server); the bot runs without it",
                settings.metrics_host, port,
                "is already in use" if taken else f"can't be used ({error.strerror or error})",
            )  # fmt: skip
            return False
        self._runner = runner
        host, bound = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in str(host) else str(host)
        self.url = f"http://{host}:{bound}"
        log.info("metrics on %s/metrics (and /readyz, /healthz)", self.url)
        return True

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
