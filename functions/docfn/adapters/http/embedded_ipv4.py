"""IPv4 addresses carried inside IPv6 ones: where a connection to the IPv6 address really goes.

On an IPv6 cluster a NAT64 gateway turns ``64:ff9b::7f00:1`` into a connection to 127.0.0.1; 6to4
(``2002::/16``) and Teredo (``2001::/32``) relays tunnel to the IPv4 address they embed; an
IPv4-compatible ``::a.b.c.d`` (deprecated) may be routed as IPv4. Python's ``is_global`` judges the
IPv6 prefix only (``64:ff9b::7f00:1`` is "global"), so such an address is judged by what it embeds.
"""

from __future__ import annotations

import ipaddress

NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the operator picks the length
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # RFC 3056
TEREDO = ipaddress.ip_network("2001::/32")  # RFC 4380
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291, deprecated


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """Every IPv4 address ``address`` may stand for, or None when it is not a translated or tunnelled
    form. A local-use NAT64 address is read at each RFC 6052 prefix length within its /48: which
    one the operator chose is not knowable here, so all of them must be acceptable."""
    packed = address.packed
    if address in NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(packed[12:16])]
    if address in NAT64_LOCAL_USE:
        # RFC 6052 section 2.2: bits 64-71 (byte 8) are reserved and skipped by the IPv4 address.
        layouts = (packed[6:8] + packed[9:11], packed[7:8] + packed[9:12], packed[9:13], packed[12:16])
        return [ipaddress.IPv4Address(raw) for raw in layouts]
    if address in SIX_TO_FOUR:
        return [ipaddress.IPv4Address(packed[2:6])]
    if address in TEREDO:
        assert address.teredo is not None
        return list(address.teredo)  # the relay server and the (de-obfuscated) client
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1, which are IPv6's own
        return [ipaddress.IPv4Address(packed[12:16])]
    return None
