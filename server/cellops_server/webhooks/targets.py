"""Where a webhook may be delivered (SSRF): rules on the URL when it is registered, and on
the address it resolves to when each attempt is sent.

- Only ``http`` and ``https`` URLs, with a host, without credentials, control characters or
  spaces (they would end up in the request line and headers).
- At each attempt the host is resolved and every address checked; the connection goes to
  the very address that passed (team/send.py), never to a second resolution: a name that
  answers a public address to the check and a private one to the connect (DNS rebinding)
  gets nowhere.
- Refused unless the admin allows private targets (``webhook_allow_private_targets``):
  loopback, private (RFC 1918, IPv6 ULA), link-local, CGNAT (100.64/10), unspecified,
  reserved, and any address not globally routable, also when wrapped in IPv6
  (IPv4-mapped, IPv4-compatible, 6to4, NAT64).
- Refused always, whatever the setting: cloud metadata services (169.254.169.254,
  fd00:ec2::254), multicast, broadcast and unspecified addresses. A metadata service hands
  out the server's credentials; no receiver of the team's lives there.
- A literal address in the URL (also in decimal, octal or hex forms such as 2130706433 or
  0x7f.1, which resolvers accept) is checked when the webhook is registered, so an
  obviously refused target is a 400 at once; names are checked at each attempt.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL = 2048
NEVER = (
    "a cloud metadata service",
    "an unspecified address",
    "a multicast address",
    "the broadcast address",
)


class TargetRefused(ValueError):
    """The URL or the address it resolves to may not be delivered to (a 400 on
    registering; a failed attempt, not retried, on sending)."""


@dataclass(frozen=True)
class Target:
    scheme: str  # http | https
    host: str  # as in the URL (a name, or an address without brackets)
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """The target of a webhook URL, or TargetRefused saying what is wrong with it."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"the URL is too long: at most {MAX_URL} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise TargetRefused(
            "the URL must be ASCII without spaces or control characters (percent-encode "
            "them; use the punycode form of an international host name)"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused(f"only http and https URLs are delivered to, not {scheme or url!r}")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "credentials in the URL are not supported: receivers check the signature"
        )
    try:
        port = parts.port
    except ValueError:
        raise TargetRefused("the URL's port must be a number from 1 to 65535") from None
    if port is None:
        port = 443 if scheme == "https" else 80
    host = parts.hostname or ""
    if not host.strip(".") or port == 0:
        raise TargetRefused("the URL needs a host (and a port from 1 to 65535, if any)")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(scheme, host, port, path)


def literal_address(host: str) -> IP | None:
    """The address a host names without any lookup (every form a resolver accepts as a
    number: dotted, decimal, octal, hex, IPv6), or None for a name."""
    try:
        info = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(info[0][4][0]).split("%", 1)[0])


def refusal(address: IP, allow_private: bool) -> str | None:
    """Why ``address`` may not be delivered to, or None when it may."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        why = refusal(inner, allow_private)
        return None if why is None else f"{why} (inside {address})"
    if address in METADATA:
        return "a cloud metadata service"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
        return "the broadcast address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a carrier-grade NAT address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def _embedded_ipv4(address: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    value = int(address)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (IPv4-compatible, deprecated)
        return ipaddress.IPv4Address(value)
    return None


def check_registration(url: str, allow_private: bool) -> Target:
    """A webhook URL as registered: its form, and its host if it is a literal address."""
    target = parse_url(url)
    address = literal_address(target.host)
    if address is not None and (why := refusal(address, allow_private)) is not None:
        raise TargetRefused(_refused_text(target.host, address, why))
    return target


def pick_address(target: Target, addresses: list[str], allow_private: bool) -> str:
    """The first resolved address that may be delivered to, else TargetRefused naming why
    (the connection then goes to exactly this address)."""
    reasons = []
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        why = refusal(address, allow_private)
        if why is None:
            return str(address)
        reasons.append(_refused_text(target.host, address, why))
    if not reasons:
        raise TargetRefused(f"{target.host} resolves to no address")
    raise TargetRefused("; ".join(reasons))


def _refused_text(host: str, address: IP, why: str) -> str:
    where = str(address) if host == str(address) else f"{host} ({address})"
    if why.split(" (inside")[0] in NEVER:
        return f"refused target {where}: {why} (never delivered to)"
    return (
        f"refused target {where}: {why}; private targets need the admin setting "
        "webhook_allow_private_targets"
    )
