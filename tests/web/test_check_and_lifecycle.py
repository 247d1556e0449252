"""`python -m bot check` probes the web server; a busy port is said clearly and the bot runs on."""

from __future__ import annotations

import logging
import socket

import pytest

from bot.check import check_web
from tests.web.conftest import Web


def busy_port() -> tuple[socket.socket, int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder, holder.getsockname()[1]


async def test_check_finds_the_running_server_a_free_port_and_a_busy_one(web: Web) -> None:
    settings = web.h.settings
    port = int(web.url.rsplit(":", 1)[1])
    running = await check_web(settings.model_copy(update={"web_port": port}))
    assert running.ok and "the bot's web server answers" in running.detail
    assert "sign-in off" in running.detail
    off = await check_web(settings)  # WEB_PORT=0 in the tests' settings
    assert off.ok and off.detail.startswith("off")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    free_port = free.getsockname()[1]
    free.close()
    ok = await check_web(settings.model_copy(update={"web_port": free_port}))
    assert ok.ok and "is free" in ok.detail
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # another program holds the port
    with holder:
        taken = holder.getsockname()[1]
        busy = await check_web(settings.model_copy(update={"web_port": taken}))
    assert not busy.ok and "WEB_PORT" in busy.detail


async def test_a_busy_port_is_logged_and_the_bot_runs_without_the_web(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    h = web.h
    holder, taken = busy_port()
    with holder:
        await h.stop_bot()
        with caplog.at_level(logging.ERROR, logger="web.server"):
            bot = await h.start_bot(web_port=taken, web_base_url="https://g.example.test")
    assert bot.web is None and bot.web_link("/all") is None
    assert any("already in use" in r.message and "WEB_PORT" in r.message for r in caplog.records)
    rec = await h.fake.slash("coins", {}, user=h.alice)
    assert "300" in (await rec.wait_original()).embed_text()
