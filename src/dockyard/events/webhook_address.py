"""Which addresses a webhook may reach with ``hub.webhooks.allowprivate`` off: a check on its
own, since the management API runs it on every webhook saved, with no HTTP client loaded."""

from __future__ import annotations

import ipaddress

__all__ = ["address_allowed"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(address: _Address) -> bool:
    """Whether a webhook may connect to ``address`` with ``allowprivate`` off."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
