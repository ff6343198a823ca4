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
