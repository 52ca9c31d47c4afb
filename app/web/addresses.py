"""The client address that the per-address rate limits count against.

Forwarding headers count only from the proxies named in `portal.trusted_proxies` (uvicorn
applies them); whatever arrives is used only if it is an IP address, in its canonical form, so
that no header can mint a new counter with every request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

UNKNOWN = "unknown"


def address_of(client: Sequence[object] | None) -> str:
    """The host of an ASGI `client` (host, port), as an IP address, or "unknown"."""
    if not client:
        return UNKNOWN
    try:
        return str(ipaddress.ip_address(str(client[0])))
    except ValueError:
        return UNKNOWN
