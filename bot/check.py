"""`python -m bot check`: test each part of the set-up and print one line per part.

Each line is `OK  part: detail` or `FAIL part: reason -> what to do`. Exit code 0 when every
part is OK. Nothing here prints a secret.
"""

from __future__ import annotations

import errno
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import discord

from bot.app import build_database, build_object_store
from bot.config import Settings, StorageBackend
from bot.nanobanana import NanobananaClient, NanobananaError
from bot.nanobanana.catalogue import ListedModel, image_models
from bot.nanobanana.errors import AuthenticationFailed, InvalidRequest
from bot.services.catalog import SHUT_DOWN, Availability, ModelCatalog, resolve
from bot.services.models import describe_replacement, load_models
from storage.leases import LeaseRepository
from storage.model_states import ModelStateRepository
from storage.objects import StorageError
from storage.timeutil import utcnow


@dataclass(frozen=True)
class CheckResult:
    part: str
    ok: bool
    detail: str
    #: Works, but the owner should act (e.g. a retired model replaced by its successor).
    warn: bool = False

    def line(self) -> str:
        status = "FAIL" if not self.ok else "WARN" if self.warn else "OK  "
        return f"{status} {self.part}: {self.detail}"


async def check_database(settings: Settings) -> CheckResult:
    db = build_database(settings)
    fix = (
        "check DATABASE_URL (host, port, user, password, database) and that the server runs"
        if settings.postgres_url
        else "check DATABASE_PATH points to a writable file"
    )
    try:
        async with db:
            applied = await db.migrate()
            users = await db.fetchval("SELECT COUNT(*) FROM users")
    except Exception as error:  # any failure is a FAIL line, never a traceback
        return CheckResult("database", False, f"{type(error).__name__}: {error} -> {fix}")
    note = f", applied {len(applied)} migration(s)" if applied else ""
    return CheckResult("database", True, f"{db.description} ({users} users{note})")


async def check_object_store(settings: Settings) -> CheckResult:
    store = build_object_store(settings)
    key = f"checks/probe-{uuid.uuid4().hex}.txt"
    payload = b"nanobanana-bot probe"
    where = (
        str(settings.local_storage_dir)
        if settings.storage_backend is StorageBackend.LOCAL
        else f"bucket {settings.s3_bucket} at {settings.s3_endpoint}"
    )
    fix = (
        "check LOCAL_STORAGE_DIR is writable"
        if settings.storage_backend is StorageBackend.LOCAL
        else "check S3_BUCKET exists and the access key may read, write and delete in it"
    )
    try:
        opener: Callable[[], Awaitable[None]] | None = getattr(store, "open", None)
        if opener is not None:
            await opener()
        await store.put(key, payload, "text/plain")
        if await store.get(key) != payload:
            return CheckResult("object store", False, f"{where}: read back different bytes")
        await store.delete(key)
    except StorageError as error:
        return CheckResult("object store", False, f"{where}: {error} -> {fix}")
    finally:
        await store.close()
    return CheckResult("object store", True, f"{where}: write, read and delete work")


async def check_discord(settings: Settings) -> CheckResult:
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(settings.discord_token.get_secret_value())
        name = str(client.user)
    except discord.LoginFailure:
        return CheckResult(
            "discord token",
            False,
            "Discord refused the token -> copy a fresh one from the Developer Portal (Bot tab) "
            "into DISCORD_TOKEN",
        )
    except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
        return CheckResult("discord token", False, f"cannot reach Discord ({type(error).__name__})")
    finally:
        await client.close()
    return CheckResult("discord token", True, f"logged in as {name}")


async def _retired_models(settings: Settings) -> dict[str, str]:
    """Models the deployment's database has seen answer 404 (empty when it can't be read)."""
    db = build_database(settings)
    try:
        async with db:
            await db.migrate()
            snapshot = await ModelStateRepository(db).snapshot()
    except Exception:  # the database line says what is wrong with it
        return {}
    return {m: s.retired_reason or "404" for m, s in snapshot.states.items() if s.retired}


async def check_gemini(settings: Settings) -> list[CheckResult]:
    """The key (by listing the models it can use), which image models exist for it, which
    the bot offers, and any configured model that is missing or retired (naming its
    successor). Lines: `gemini key`, `models`, then one `model` line each."""
    lineup, model_settings = load_models(settings)
    results: list[CheckResult] = []
    listed: list[ListedModel] | None = None
    if settings.gemini_api_key is None:
        results.append(
            CheckResult(
                "gemini key",
                False,
                "GEMINI_API_KEY is not set -> create one in Google AI Studio (with billing "
                "enabled for its project); until then /generate is disabled",
            )
        )
    else:
        client = NanobananaClient.from_settings(settings)
        client.lineup = lineup
        try:
            listed = await client.list_models()
        except AuthenticationFailed:
            results.append(
                CheckResult("gemini key", False, "the key was refused -> check GEMINI_API_KEY")
            )
        except InvalidRequest as error:
            if error.status == 404:
                results.append(
                    CheckResult(
                        "gemini key",
                        True,
                        f"{settings.nanobanana_base_url} has no models list (a proxy?): the "
                        "bot relies on its lineup and on 404s",
                        warn=True,
                    )
                )
            else:
                results.append(CheckResult("gemini key", False, f"{error} -> check GEMINI_API_KEY"))
        except NanobananaError as error:
            results.append(
                CheckResult(
                    "gemini key",
                    False,
                    f"cannot list the models at {settings.nanobanana_base_url} ({error}) -> "
                    "check NANOBANANA_BASE_URL and the network",
                )
            )
        finally:
            await client.close()
    images = image_models(listed, lineup) if listed is not None else None
    if listed is not None and images is not None:
        results.append(
            CheckResult("gemini key", True, f"accepted; it may use {len(listed)} models")
        )
        names = [
            f"{m.model} ({m.display_name})" + ("" if m.model in lineup else " [new to us]")
            for m in images
        ]
        results.append(
            CheckResult(
                "models",
                bool(images),
                f"the key can use {len(images)} image model(s): {', '.join(names)}"
                if images
                else "the key can use no image model -> enable billing for the key's Google "
                "project, or check its region",
            )
        )
    availability = Availability(
        today=datetime.now(UTC).date(),
        listed=frozenset(m.model for m in images) if images is not None else None,
        retired=await _retired_models(settings),
    )
    catalog = resolve(model_settings, lineup, availability)
    results.extend(_model_lines(catalog))
    return results


def _model_lines(catalog: ModelCatalog) -> list[CheckResult]:
    """One line per offered model, and one per configured model that can't be used."""
    lines = [CheckResult("model", True, line) for line in catalog.describe()]
    for replacement in catalog.replacements:
        works = replacement.why == SHUT_DOWN and replacement.used is not None
        lines.append(
            CheckResult(
                "model", works, describe_replacement(replacement, catalog.lineup), warn=works
            )
        )
    if not catalog.usable:
        preference = ", ".join(catalog.lineup.preference)
        lines.append(
            CheckResult(
                "model",
                False,
                "no configured model can be used: every image request is refused -> "
                + (
                    f"none of the preference order ({preference}) is offered to this key"
                    if catalog.auto
                    else "set NANOBANANA_MODEL=auto, or one of the models listed above"
                ),
            )
        )
    return lines


async def probe_health(settings: Settings) -> int:
    """`python -m bot health`: 0 when a bot process on this host holds a live lease in the
    database (its heartbeat runs), else 1. One query, no Discord or API call: light enough
    for a container's health check every few seconds."""
    db = build_database(settings)
    try:
        async with db:
            processes = await LeaseRepository(db).processes()
    except Exception as error:  # a FAIL line, never a traceback
        print(f"FAIL database: {type(error).__name__}: {error}")
        return 1
    host = socket.gethostname()
    now = utcnow()
    mine = [p for p in processes if p.name.startswith(f"{host} ") and p.lease_until >= now]
    if mine:
        print(f"OK   {len(mine)} live bot process(es) on {host}")
        return 0
    print(f"FAIL no live bot process on {host}: it is starting, or its heartbeat stopped")
    return 1


async def check_web(settings: Settings) -> CheckResult:
    """The web gallery and API: the bot's server answering, or its port free for it."""
    if not settings.web_enabled:
        return CheckResult("web", True, "off (WEB_PORT=0)")
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "") else settings.web_host
    if host == "::":
        host = "::1"
    address = f"{settings.web_host}:{settings.web_port}"
    base = settings.web_base_url or f"http://{address}"
    sign_in = (
        f"sign-in on: register {base}/auth/callback as an OAuth2 redirect"
        if settings.sign_in_enabled
        else "sign-in off (DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET unset)"
    )
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.web_port}/healthz"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
            http.get(url) as response,
        ):
            body = await response.json(content_type=None) if response.status == 200 else None
    except (aiohttp.ClientConnectionError, TimeoutError):
        return _web_port_free(settings, address, sign_in)
    except (aiohttp.ClientError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("service") == "nanobanana-bot":
        return CheckResult("web", True, f"the bot's web server answers at {address} "
                                        f"(public address {base}); {sign_in}")  # fmt: skip
    return CheckResult(
        "web", False, f"another program answers at {address} -> set WEB_PORT to a free port "
        "(or WEB_PORT=0 to turn the web gallery and API off)",
    )  # fmt: skip


def _web_port_free(settings: Settings, address: str, sign_in: str) -> CheckResult:
    """Nothing answers: can the bot listen there?"""
    family = socket.AF_INET6 if ":" in settings.web_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.web_host, settings.web_port))
        except OSError as error:
            reason = "in use" if error.errno == errno.EADDRINUSE else (error.strerror or "refused")
            return CheckResult(
                "web", False, f"{address} is {reason} -> set WEB_HOST/WEB_PORT to a free "
                "address (or WEB_PORT=0 to turn the web gallery and API off)",
            )  # fmt: skip
    return CheckResult(
        "web", True, f"{address} is free: the gallery and API listen there while the bot "
        f"runs; {sign_in}",
    )  # fmt: skip


async def run_checks(settings: Settings) -> int:
    """Run every check, print one line each; 0 if none failed (WARN lines don't fail)."""
    print(f"OK   configuration: loaded ({settings.storage_backend.value} storage)")
    failed = 0
    checks: tuple[Callable[[Settings], Awaitable[CheckResult | list[CheckResult]]], ...] = (
        check_database, check_object_store, check_discord, check_gemini, check_web,
    )  # fmt: skip
    for check in checks:
        started = time.monotonic()
        outcome = await check(settings)
        results = outcome if isinstance(outcome, list) else [outcome]
        took = f" ({time.monotonic() - started:.2f}s)"
        for index, result in enumerate(results):
            print(f"{result.line()}{took if index == 0 else ''}", flush=True)
            failed += not result.ok
    return 1 if failed else 0
