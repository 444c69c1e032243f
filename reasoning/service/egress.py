"""Outbound calls to user-supplied teacher URLs: only to public addresses, or allowed ones.

Teacher URLs are addresses a user makes the server call, the service's largest attack
surface (SSRF). Every address a host name resolves to is checked when the connection is
made, and the connection goes to the address that was checked, so a name that resolves
to something else a moment later (DNS rebinding) gains nothing. Loopback, private,
link-local (cloud metadata at 169.254.169.254 included), carrier-grade NAT, multicast,
reserved and unspecified addresses, and IPv4-mapped IPv6 forms of them, are refused
unless an allow-list names them; a name that does not resolve is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressRefused(httpcore.ConnectError):
    """The guard refused to connect; the message says which address and why."""


def _plain(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) judged as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def why_not_public(ip: IPAddress) -> str | None:
    """None for a public unicast address; otherwise what kind of address it is."""
    ip = _plain(ip)
    checks = [
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ]
    for name, hit in checks:
        if hit:
            return name
    # is_global is False for the rest that is not routable (carrier-grade NAT, documentation
    # and benchmarking ranges, ...).
    return None if ip.is_global else "not globally routable"


@dataclass(frozen=True)
class EgressPolicy:
    """Which non-public destinations are allowed anyway: CIDRs and exact host names."""

    networks: tuple[IPNetwork, ...] = ()
    hostnames: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> EgressPolicy:
        """From "10.0.0.0/8, teacher.internal, 127.0.0.1" (a setting) or a list of entries."""
        items = entries.split(",") if isinstance(entries, str) else list(entries)
        networks, names = [], set()
        for raw in (item.strip() for item in items):
            if not raw:
                continue
            try:
                networks.append(ipaddress.ip_network(raw.strip("[]"), strict=False))
            except ValueError:
                names.add(raw.lower().rstrip("."))
        return cls(tuple(networks), frozenset(names))

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why connecting to `ip` (for `host`) is refused, or None when it is fine."""
        if host.lower().rstrip(".") in self.hostnames:
            return None
        if any(_plain(ip) in net or ip in net for net in self.networks):
            return None
        kind = why_not_public(ip)
        if kind is None:
            return None
        allowed = "only public addresses or those in the teacher allow-list can be called"
        if _literal(host) == ip:  # the caller wrote the address: no news to them
            return f"{host} is a {kind} address; {allowed}"
        # A name: what it resolves to inside this network is not the caller's to learn.
        return f"{host} resolves to an address that is not public; {allowed}"

    def check_url(self, url: str) -> str | None:
        """What can be checked without DNS: scheme, shape, and a literal IP host."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError as err:
            return f"not a valid URL: {err}"
        if parts.scheme not in ("http", "https"):
            return f"only http and https URLs can be called, not {parts.scheme or 'no scheme'!r}"
        if not parts.hostname:
            return "the URL has no host"
        if parts.username or parts.password:
            return "credentials in the URL are not allowed; use teacher_predict_headers"
        try:
            ip = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return None  # a name: checked when the connection is made
        return self.refusal(parts.hostname, ip)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked one (never re-resolves)."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        for ip in addresses:
            reason = self.policy.refusal(host, ip)
            if reason:
                raise EgressRefused(reason)
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise EgressRefused("unix sockets are not reachable from teacher URLs")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
    except OSError as err:
        raise EgressRefused(f"{host} does not resolve ({err})") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise EgressRefused(f"{host} does not resolve")
    return addresses


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, connecting only through the guard."""

    def __init__(self, policy: EgressPolicy) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedBackend(policy)
        )


def refusal_of(error: BaseException) -> str | None:
    """The guard's reason if it caused this httpx error, else None."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, EgressRefused):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
