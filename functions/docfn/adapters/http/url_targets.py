"""Which addresses this function may connect to for a URL a caller gave it: URL inputs, a chat's
``image_url``, a task's callback. A caller's URL must not make the function a proxy into its own
network (SSRF): private, loopback, link-local and other non-global addresses are refused unless
``DOCFN_URL_ALLOWED_NETWORKS`` names them (local development, tests); the cloud metadata endpoints
are refused always. An IPv6 address that translates or tunnels to IPv4 (NAT64, 6to4, Teredo) is
judged by the IPv4 address it embeds (``embedded_ipv4``). A refusal never names the address a host
resolved to: that would let a caller map the function's internal DNS. A host name is resolved once
and the connection goes to the address that was checked (the name travels only in the Host header
and TLS SNI), so DNS rebinding reaches nothing new.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.errors import BadInput
from ...core.settings import Settings
from .embedded_ipv4 import embedded_ipv4

if TYPE_CHECKING:
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Instance metadata (AWS, GCP, Azure, OpenStack), the ECS task credentials endpoint, AWS's IPv6
# metadata address: never a target, whatever the settings allow.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)


@dataclass(frozen=True)
class UrlTargets:
    settings: Settings

    @property
    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(net, strict=False) for net in self.settings.url_allowed_networks]

    def checked_address(self, url: httpx.URL) -> IPAddress:
        """The one address to connect to for ``url``'s host: resolved once, and allowed."""
        if url.scheme not in ("http", "https") or not url.host:
            raise BadInput(f"url must be an absolute http(s):// URL; got {str(url)[:200]!r}")
        try:
            infos = socket.getaddrinfo(url.host, url.port or 0, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise BadInput(f"the host of {url} does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
        for address in addresses:
            if self.allowed(address):
                return address
        raise BadInput(
            f"the host of {url} resolves to a non-public address (private, loopback, link-local,"
            " metadata, or an IPv6 form of one). URLs must be public (DOCFN_URL_ALLOWED_NETWORKS"
            " admits private networks for local development)"
        )

    def allowed(self, address: IPAddress) -> bool:
        if address in METADATA_ADDRESSES:
            return False
        if self._listed(address):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return self.allowed(address.ipv4_mapped)
            # Judged by where it leads as well as by its own prefix: an embedded address can only
            # refuse (Teredo, never global itself, stays refused whatever its relay and client).
            embedded = embedded_ipv4(address)
            if embedded is not None and not all(self.allowed(inner) for inner in embedded):
                return False
        return address.is_global and not address.is_multicast

    def _listed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks)


def host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port is None else f"{host}:{url.port}"


def pinned(url: httpx.URL, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """``url`` dialled at ``address``: the URL to request, its Host header, and the SNI extension."""
    return url.copy_with(host=str(address)), {"Host": host_header(url)}, {"sni_hostname": url.host}
