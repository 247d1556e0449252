"""The address of the client behind a request, with reverse proxies in front of the bot.

A proxy adds the address it got the request from to `X-Forwarded-For`; anyone can send that
header too, so it is believed only from a trusted proxy (WEB_TRUSTED_PROXIES), and then only
as far as the chain goes through trusted proxies: walking it from the right (the hop nearest
to us), the first address that is not a trusted proxy is the client. Addresses further left
were written by the client itself and mean nothing. (The same rule as nginx's real_ip module
with `real_ip_recursive on`, and MDN's "X-Forwarded-For: selecting an IP address".)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address
# Requests whose peer is unknown (a Unix socket) share one key.
UNKNOWN = "?"


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (`1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
    `[2001:db8::1]:80`), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        return ip_address(text)
    except ValueError:
        return None


def _trusted(address: IPAddress, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[IPNetwork]
) -> str:
    """The client's address: `peer` (the connection's other end) unless it is a trusted
    proxy; then the rightmost address of `forwarded_for` (every X-Forwarded-For line, in
    order) that is not a trusted proxy, or the leftmost if all are. A chain with anything
    unreadable is not believed (the peer is used)."""
    if peer is None:
        return UNKNOWN
    current = parse_address(peer)
    if current is None or not proxies or not _trusted(current, proxies):
        return peer
    hops = [hop for line in forwarded_for for hop in line.split(",")]
    chain = [parse_address(hop) for hop in hops if hop.strip()]
    if not chain or any(hop is None for hop in chain):
        return peer
    for hop in reversed(chain):
        assert hop is not None
        current = hop
        if not _trusted(hop, proxies):
            break
    return str(current)
