"""Outbound URL vetting (SSRF): a webhook goes only to public unicast addresses.

``vet_url`` refuses, in every spelling, loopback, private (RFC 1918, ULA), link-local (cloud
metadata 169.254.169.254 included), unspecified, multicast, reserved, CGNAT (100.64/10) and
documentation addresses, also when IPv4-mapped into IPv6. A host given as a number is read with
``inet_aton`` semantics (``2130706433``, ``0x7f000001``, ``127.1``, ``017700000001`` are all
127.0.0.1); a name is resolved through the ``Resolver`` port and EVERY address it answers must be
public. The answer is returned so the caller connects to that address (pinned): a second
resolution (DNS rebinding) never happens.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from hallmark.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to (strings, as socket.getaddrinfo gives them)
Resolver = Callable[[str, int], Sequence[str]]

UNRESOLVED = "unresolvable_host"  # may be transient: a delivery is retried, a subscription refused
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


@dataclass(frozen=True)
class Target:
    """A vetted destination: connect to ``address`` (never re-resolve ``host``)."""

    url: str
    scheme: str
    host: str  # the name for TLS (SNI, certificate check) and the Host header
    port: int
    address: str  # the pinned IP
    path: str  # path and query, for the request line


def refuse(message: str, details: dict[str, object] | None = None, code: str = "invalid_url") -> DomainError:
    return DomainError(code, message, 400, details or {})


def parse_ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """``inet_aton`` semantics: 1 to 4 dot-separated parts, each decimal, octal (leading 0) or hex
    (0x); the last part fills the remaining bytes. None if ``host`` is not such a number."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        p = part.lower()
        try:
            if p.startswith("0x"):
                if len(p) == 2:
                    values.append(0)  # "0x" alone is 0 to inet_aton
                    continue
                values.append(int(p[2:], 16))
            elif len(p) > 1 and p.startswith("0"):
                values.append(int(p[1:], 8))
            else:
                if not p.isdigit():
                    return None
                values.append(int(p, 10))
        except ValueError:
            return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """``host`` (as urlsplit gives it: no brackets, lower case) as an IP address, if it is one."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    return parse_ipv4_number(host)


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why a connection to ``ip`` is refused, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if embedded is not None:
                why = forbidden_reason(embedded)
                if why is not None:
                    return f"{why} (embedded in {ip})"
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if not ip.is_global:
        return "not globally routable"
    return None


def _normal_host(raw: str) -> str:
    host = raw.lower()
    while host.endswith("."):
        host = host[:-1]  # "localhost." and "127.0.0.1." name the same thing
    return host


def vet_url(url: str, resolve: Resolver, *, allow_loopback: bool = False) -> Target:
    """The destination of ``url`` if it is an ``https`` URL to a public address (every address a
    name resolves to); else DomainError ``invalid_url`` (400). ``allow_loopback`` (the local cloud
    only) also admits ``http``/``https`` to the loopback, and nothing else that is not public."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("the webhook url is not a valid URL", {"url": url}) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise refuse("a webhook url must be an absolute https URL", {"url": url})
    if parts.username is not None or parts.password is not None:
        raise refuse("a webhook url must not carry credentials")
    host = _normal_host(parts.hostname)
    if not host:
        raise refuse("a webhook url must name a host", {"url": url})
    port = port or (443 if parts.scheme == "https" else 80)
    literal = literal_address(host)
    if literal is None and (host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES)):
        if allow_loopback and (host == "localhost" or host.endswith(".localhost")):
            literal = ipaddress.IPv4Address("127.0.0.1")
        else:
            raise refuse("a webhook url must point to a public host", {"host": host, "reason": "local name"})
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            answers = list(resolve(host, port))
        except OSError as exc:
            raise refuse("the webhook host does not resolve", {"host": host, "reason": str(exc)[:200]},
                         code=UNRESOLVED) from None
        addresses = []
        for answer in answers:
            ip = literal_address(str(answer).lower())
            if ip is None:
                raise refuse("the webhook host resolves to something that is not an address", {"host": host})
            addresses.append(ip)
        if not addresses:
            raise refuse("the webhook host does not resolve", {"host": host}, code=UNRESOLVED)
    for ip in addresses:
        reason = forbidden_reason(ip)
        if reason is None:
            continue
        if allow_loopback and (ip.is_loopback or (isinstance(ip, ipaddress.IPv6Address)
                                                  and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)):
            continue
        raise refuse("a webhook url must point to a public host",
                     {"host": host, "address": str(ip), "reason": reason})
    if parts.scheme != "https" and not (allow_loopback and all(forbidden_reason(ip) for ip in addresses)):
        raise refuse("a webhook url must use https", {"url": url})
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=url, scheme=parts.scheme, host=host, port=port, address=str(addresses[0]), path=path)
