"""Who is asking, behind a reverse proxy: the client address is taken from X-Forwarded-For only
when the connection comes from a trusted proxy (WEB_TRUSTED_PROXIES), walking the chain from
the right past trusted proxies; failed token checks are throttled per client address, and a
valid token is never refused for someone else's failures."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from bot.config import SettingsError, load_settings
from tests.web.conftest import Web
from web.remote import client_address

PROXIES = (ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32"), ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No trusted proxy in the way: the peer, whatever the header claims.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # From a trusted proxy: the rightmost address that isn't a trusted proxy.
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], "198.51.100.1"),  # spoofed left
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # two header lines
        ("::1", ["2001:db8::1"], "2001:db8::1"),
        ("::1", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("127.0.0.1", ["198.51.100.1:8080"], "198.51.100.1"),
        # All trusted: the leftmost (the first proxy's own client).
        ("127.0.0.1", ["10.9.9.9, 10.1.1.1"], "10.9.9.9"),
        # A header a proxy sends without any address, or garbage: the proxy itself.
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", [""], "127.0.0.1"),
        ("127.0.0.1", ["not-an-address"], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.1, garbage"], "127.0.0.1"),
        # Unknown peer (a Unix socket): one shared key.
        (None, ["198.51.100.1"], "?"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_the_setting_takes_addresses_and_networks() -> None:
    settings = load_settings(
        discord_token="t", web_trusted_proxies="127.0.0.1, 10.0.0.0/8 ::1 192.168.1.7/24"
    )
    assert [str(n) for n in settings.web_trusted_proxies] == [
        "127.0.0.1/32", "10.0.0.0/8", "::1/128", "192.168.1.0/24",
    ]  # fmt: skip
    assert load_settings(discord_token="t").web_trusted_proxies == []
    with pytest.raises(SettingsError, match="WEB_TRUSTED_PROXIES is invalid"):
        load_settings(discord_token="t", web_trusted_proxies="example.org")


async def test_guessing_behind_a_proxy_throttles_the_guesser_only(web: Web) -> None:
    h = web.h
    await h.stop_bot()
    await h.start_bot(web=True, web_trusted_proxies=[ip_network("127.0.0.1/32")])
    token = await web.token(h.alice)
    guesser = {"X-Forwarded-For": "203.0.113.66"}
    for n in range(30):
        status, _, _ = await web.call("GET", "/api/v1/me", f"nbt_{n:043d}", headers=guesser)
        assert status == 401
    status, _, response = await web.call("GET", "/api/v1/me", f"nbt_{'x' * 43}", headers=guesser)
    assert status == 429 and int(response.headers["Retry-After"]) >= 1
    # Everyone else behind the same proxy is untouched.
    member = {"X-Forwarded-For": "198.51.100.7"}
    await web.call("GET", "/api/v1/me", token, headers=member, expect=200)
    status, _, _ = await web.call("GET", "/api/v1/me", "nbt_" + "y" * 43, headers=member)
    assert status == 401
    # A valid token is never refused for its address's failures.
    await web.call("GET", "/api/v1/me", token, headers=guesser, expect=200)


async def test_without_trusted_proxies_the_header_is_ignored(web: Web) -> None:
    """X-Forwarded-For from an untrusted peer changes nothing: a guesser can't escape the
    throttle by making up addresses, and a valid token still goes through."""
    h = web.h
    token = await web.token(h.alice)
    for n in range(30):
        spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
        status, _, _ = await web.call("GET", "/api/v1/me", f"nbt_{n:043d}", headers=spoofed)
        assert status == 401
    spoofed = {"X-Forwarded-For": "198.51.100.200"}
    status, _, _ = await web.call("GET", "/api/v1/me", f"nbt_{'x' * 43}", headers=spoofed)
    assert status == 429
    await web.call("GET", "/api/v1/me", token, expect=200)
