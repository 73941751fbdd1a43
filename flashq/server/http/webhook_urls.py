"""Which webhook URLs the server will POST to (PROTOCOL §5.8): SSRF protection, pure.

A webhook makes the server send requests on a client's behalf, so it must not reach the
server's own host, its private network or a cloud metadata service. Registration checks the
URL's text (host names and IP literals, including the numeric spellings `inet_aton` accepts,
such as `2130706433` for 127.0.0.1); delivery checks the addresses the name resolves to,
which closes the DNS-rebinding gap upstream leaves open. Error texts are upstream's.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_BLOCKED_V4: Final = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # unspecified / "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata lives here)
        "172.16.0.0/12",  # RFC 1918
        "192.0.2.0/24",  # documentation
        "192.168.0.0/16",  # RFC 1918
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "255.255.255.255/32",  # broadcast
    )
)
_BLOCKED_V6: Final = tuple(
    ipaddress.IPv6Network(n) for n in ("::1/128", "::/128", "fc00::/7", "fe80::/10")
)
_LOCAL_NAMES: Final = ("localhost",)
_LOCAL_SUFFIXES: Final = (".localhost", ".local")
_INTERNAL_SUFFIXES: Final = (".internal", ".lan")
_INTERNAL_PARTS: Final = (".svc.cluster.local", "169.254.")


def blocked_ip(ip: IPAddress) -> bool:
    """True for loopback, private, link-local, unspecified, documentation, CGNAT, broadcast."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return blocked_ip(ip.ipv4_mapped)
        return any(ip in net for net in _BLOCKED_V6)
    return any(ip in net for net in _BLOCKED_V4)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        try:  # the legacy numeric forms resolvers accept: 2130706433, 0x7f.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def webhook_url_error(url: str, *, allow_private: bool = False) -> str | None:
    """The reason `url` may not be a webhook target, or None if it may.

    `allow_private` (tests only) keeps the syntax checks and drops the address rules.

    >>> webhook_url_error("http://127.0.0.1:8080/hook")
    'Localhost URLs are not allowed for webhooks'
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"Invalid URL: {exc}"
    if not parts.scheme:
        return "Invalid URL: relative URL without a base"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"Invalid scheme '{scheme}': only http/https allowed"
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "URL must have a host"
    if allow_private:
        return None
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES) or host in ("::1", "0.0.0.0"):
        return "Localhost URLs are not allowed for webhooks"
    ip = _ip_literal(host)
    if ip is not None:
        if ip.is_loopback:
            return "Localhost URLs are not allowed for webhooks"
        if blocked_ip(ip):
            return f"Private/internal IP addresses are not allowed: {ip}"
        return None
    if (
        host.endswith(_INTERNAL_SUFFIXES)
        or any(part in host for part in _INTERNAL_PARTS)
        or host.startswith("metadata.")
    ):
        return f"Internal/cloud metadata URLs are not allowed: {host}"
    return None
