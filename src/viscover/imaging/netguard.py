"""SSRF guard: an image URL may only reach the public internet, unless its host or address is allowed.

A manifest row or a search request names a URL that the server then fetches; without this guard it could make the
server read cloud metadata (169.254.169.254), admin pages on localhost or anything on the private network. Every
address the host resolves to is checked (so decimal, hex and IPv4-mapped spellings of a private address are
caught), and the request is then sent to the checked address itself (the Host header and TLS name stay the
host's), so a DNS answer that changes between the check and the connection cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from viscover.errors import BadImageError

if TYPE_CHECKING:  # httpx is imported when a URL is fetched, not when viscover.imaging is
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_KINDS = (("is_loopback", "loopback"), ("is_unspecified", "unspecified"), ("is_link_local", "link-local"),
          ("is_multicast", "multicast"), ("is_private", "private"), ("is_reserved", "reserved"))


@dataclass(frozen=True)
class AllowList:
    """Hosts (by name), addresses and networks that URLs may reach even though they are not public."""

    everything: bool = False
    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def allows_host(self, host: str) -> bool:
        return self.everything or host.lower().rstrip(".") in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        return self.everything or any(ip.version == net.version and ip in net for net in self.networks)


@lru_cache(maxsize=32)
def parse_allow_list(text: str) -> AllowList:
    """Parse the `url_allow_hosts` setting: comma-separated host names, IPs or CIDRs; `*` allows everything."""
    hosts, networks = set(), []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "*":
            return AllowList(everything=True)
        try:
            networks.append(ipaddress.ip_network(part.strip("[]"), strict=False))
        except ValueError:
            hosts.add(part.lower().rstrip("."))
    return AllowList(False, frozenset(hosts), tuple(networks))


@dataclass(frozen=True)
class Destination:
    """Where to send the request for a checked URL: the URL (host replaced by the checked address), the Host
    header and TLS server name to keep, and the address it goes to (None when the host is allowed by name)."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)
    address: str | None = None


def refusal(ip: IPAddress) -> str | None:
    """Why `ip` is not a public internet address ("loopback", "private", ...), or None if it is."""
    embedded = None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
    if embedded is not None:
        inner = refusal(embedded)
        return f"{inner}: it embeds IPv4 {embedded}" if inner else None
    for attr, kind in _KINDS:
        if getattr(ip, attr):
            return kind
    return None if ip.is_global else "non-public"


def check_url(url: str | httpx.URL, allow: AllowList, *, what: str | None = None) -> Destination:
    """Resolve the URL's host and refuse it unless every address is public or allowed; say where to connect.

    `what` names the URL in messages (e.g. the original URL of a redirect chain); default: the URL itself.
    """
    import httpx

    target = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    name = what or str(url)
    if target.scheme not in SCHEMES:
        raise BadImageError(f"{name}: refused: only http and https URLs can be fetched, not {target.scheme or '?'}")
    host = target.host
    if not host:
        raise BadImageError(f"{name}: refused: the URL has no host")
    if allow.allows_host(host):
        return Destination(target)
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as e:
        raise BadImageError(f"{name}: cannot resolve host {host} ({e})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise BadImageError(f"{name}: cannot resolve host {host} (no address)")
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        kind = None if allow.allows_address(ip) else refusal(ip)
        if kind:
            via = "" if text == host else f" resolves to {text}, which"
            raise BadImageError(f"{name}: refused: host {host}{via} is not a public internet address ({kind}); "
                                "allow it with the url_allow_hosts setting if it is meant to be fetched")
    address = addresses[0].split("%", 1)[0]
    headers = {"Host": target.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    return Destination(target.copy_with(host=address), headers, extensions, address)
