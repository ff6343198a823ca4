"""The SSRF guard on IPv6 addresses that carry an IPv4 address: 6to4 (2002::/16), NAT64 (64:ff9b::/96) and
IPv4-mapped (::ffff:0:0/96) are judged by the IPv4 address inside them. Python calls several of these "global"
(2002:7f00:1:: is_global on 3.11), so only the unwrapping refuses them. Fetching through the guard end to end
(real sockets, redirects, allow-list parsing) is in test_bad_manifests.py."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from viscover.errors import BadImageError
from viscover.imaging import netguard
from viscover.imaging.netguard import AllowList, check_url, parse_allow_list, refusal

WRAPPED_PRIVATE = [  # (address, kind, the IPv4 address inside)
    ("2002:7f00:0001::", "loopback", "127.0.0.1"),  # 6to4
    ("2002:0a00:0001::", "private", "10.0.0.1"),
    ("2002:a9fe:a9fe::", "link-local", "169.254.169.254"),  # cloud metadata
    ("64:ff9b::7f00:1", "loopback", "127.0.0.1"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "link-local", "169.254.169.254"),
    ("::ffff:127.0.0.1", "loopback", "127.0.0.1"),  # IPv4-mapped
]
PUBLIC = ["2002:0808:0808::", "64:ff9b::808:808", "::ffff:8.8.8.8", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address,kind,inner", WRAPPED_PRIVATE)
def test_addresses_wrapping_a_private_ipv4_are_refused_naming_it(address, kind, inner):
    assert refusal(ipaddress.ip_address(address)) == f"{kind}: it embeds IPv4 {inner}"


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_and_wrappers_of_public_ipv4_are_accepted(address):
    assert refusal(ipaddress.ip_address(address)) is None


def _resolving_to(monkeypatch, *addresses: str) -> list[str]:
    """Make every host name resolve to `addresses`; returns the list of hosts looked up."""
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]

    monkeypatch.setattr(netguard.socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("address,kind,inner", WRAPPED_PRIVATE)
def test_a_host_resolving_to_a_wrapped_private_address_is_refused(monkeypatch, address, kind, inner):
    asked = _resolving_to(monkeypatch, address)
    with pytest.raises(BadImageError) as error:
        check_url("http://evil.example/x.jpg", AllowList())
    message = str(error.value)
    assert asked == ["evil.example"]
    assert message.startswith("http://evil.example/x.jpg: refused: host evil.example resolves to ")
    assert f"({kind}: it embeds IPv4 {inner})" in message and "url_allow_hosts" in message


def test_one_wrapped_private_address_among_public_ones_is_enough_to_refuse(monkeypatch):
    _resolving_to(monkeypatch, "8.8.8.8", "2002:a9fe:a9fe::")
    with pytest.raises(BadImageError, match=r"resolves to 2002:a9fe:a9fe::, .*embeds IPv4 169\.254\.169\.254"):
        check_url("https://evil.example/x.jpg", AllowList())


@pytest.mark.parametrize("address,allow", [("2002:7f00:1::", "2002::/16"), ("64:ff9b::a9fe:a9fe", "64:ff9b::/96")])
def test_an_allow_list_entry_lets_a_wrapped_address_through(monkeypatch, address, allow):
    _resolving_to(monkeypatch, address)
    with pytest.raises(BadImageError):
        check_url("http://evil.example/x.jpg", AllowList())
    destination = check_url("http://evil.example/x.jpg", parse_allow_list(allow))
    assert destination.address == address and destination.headers == {"Host": "evil.example"}
    assert destination.url.host == address  # sent to the checked address, not resolved again


def test_a_host_resolving_to_a_wrapped_public_address_is_fetched_from_it(monkeypatch):
    _resolving_to(monkeypatch, "2002:808:808::")
    destination = check_url("https://images.example/x.jpg", AllowList())
    assert destination.address == "2002:808:808::" and destination.extensions == {"sni_hostname": "images.example"}


@pytest.mark.parametrize("address", ["100.64.0.1", "::ffff:100.64.0.1"])
def test_addresses_that_are_neither_private_nor_global_are_refused(address):
    """Shared address space (carrier-grade NAT, 100.64.0.0/10) is not "private" to Python, but not on the public
    internet either."""
    inner = "" if address.startswith("1") else ": it embeds IPv4 100.64.0.1"
    assert refusal(ipaddress.ip_address(address)) == "non-public" + inner


def test_allow_list_matches_host_names_as_dns_does():
    allow = parse_allow_list("Images.Example, 10.0.0.0/8")
    assert allow.allows_host("images.example") and allow.allows_host("IMAGES.example.")  # case, trailing dot
    assert not allow.allows_host(".images.example") and not allow.allows_host("images.example.org")
    assert allow.allows_address(ipaddress.ip_address("10.1.2.3"))
    assert not allow.allows_address(ipaddress.ip_address("::ffff:10.1.2.3"))  # IPv6 is judged on its own


def test_a_host_allowed_by_name_is_not_even_resolved(monkeypatch):
    asked = _resolving_to(monkeypatch, "127.0.0.1")
    destination = check_url("http://images.example./x.jpg", parse_allow_list("images.example"))
    assert asked == [] and destination.address is None and str(destination.url) == "http://images.example./x.jpg"


@pytest.mark.parametrize("url,message", [
    ("ftp://images.example/x.jpg", "only http and https URLs can be fetched, not ftp"),
    ("file:///etc/passwd", "only http and https URLs can be fetched, not file"),
    ("http:///x.jpg", "the URL has no host"),
])
def test_urls_that_cannot_be_checked_are_refused_with_the_reason(monkeypatch, url, message):
    asked = _resolving_to(monkeypatch, "8.8.8.8")
    with pytest.raises(BadImageError, match=f"^{url}: refused: {message}"):
        check_url(url, AllowList())
    assert asked == []


def test_unresolvable_hosts_are_named(monkeypatch):
    def fails(host, *args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(netguard.socket, "getaddrinfo", fails)
    with pytest.raises(BadImageError, match=r"^http://nowhere.example/x.jpg: cannot resolve host nowhere.example "
                                            r"\(.*Name or service not known\)"):
        check_url("http://nowhere.example/x.jpg", AllowList())
    monkeypatch.setattr(netguard.socket, "getaddrinfo", lambda *a, **k: [])
    with pytest.raises(BadImageError, match=r"cannot resolve host nowhere.example \(no address\)"):
        check_url("http://nowhere.example/x.jpg", AllowList(), what="the original URL")


def test_destination_keeps_the_host_for_http_and_tls(monkeypatch):
    """The request goes to the checked address; the Host header keeps the name (and port), TLS keeps the name for
    SNI and certificate checks, and a zone index (link-local) is not part of the address connected to."""
    _resolving_to(monkeypatch, "8.8.4.4")
    plain = check_url("http://images.example:8080/x.jpg?size=2", AllowList())
    assert str(plain.url) == "http://8.8.4.4:8080/x.jpg?size=2" and plain.headers == {"Host": "images.example:8080"}
    assert plain.extensions == {} and plain.address == "8.8.4.4"
    secure = check_url("https://images.example/x.jpg", AllowList())
    assert secure.extensions == {"sni_hostname": "images.example"} and secure.headers == {"Host": "images.example"}
    _resolving_to(monkeypatch, "fe80::1%eth0")
    with pytest.raises(BadImageError, match=r"resolves to fe80::1%eth0, which is not a public internet address "
                                            r"\(link-local\)"):
        check_url("http://printer.local/x.jpg", AllowList())
    zoned = check_url("http://printer.local/x.jpg", parse_allow_list("fe80::/10"))
    assert zoned.address == "fe80::1" and zoned.url.host == "fe80::1"
