"""Who may call: the token (x-api-key or Authorization: Bearer, in constant time), and without a token,
only programs on this machine — not a web page the user happens to have open (cross-origin requests and
DNS rebinding are refused by their Origin and Host headers)."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Mapping, Optional
from urllib.parse import urlsplit

OPEN_PATHS = {"/", "/health", "/api/hello"}


def presented_credentials(headers: Mapping[str, str]) -> list[str]:
    found = []
    api_key = headers.get("x-api-key")
    if api_key:
        found.append(api_key)
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        found.append(authorization[7:].strip())
    return found


def is_authorized(expected: Optional[str], headers: Mapping[str, str]) -> bool:
    if not expected:
        return True
    wanted = expected.encode()
    # compare every credential so timing does not reveal which header was checked
    results = [hmac.compare_digest(candidate.encode(), wanted) for candidate in presented_credentials(headers)]
    return any(results)


def is_loopback_name(hostname: Optional[str]) -> bool:
    """`localhost`, or an IP literal in 127.0.0.0/8 or ::1 (an IPv4-mapped one too). A name that merely
    starts with `127.` or `localhost` (`127.0.0.1.attacker.example`, `localhost.evil`) is a domain name,
    and a rebinding attack's."""
    if not hostname:
        return False
    hostname = hostname.lower().removesuffix(".")
    if hostname == "localhost":
        return True
    if hostname.startswith("[") != hostname.endswith("]"):
        return False
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def from_this_machine(headers: Mapping[str, str]) -> bool:
    """False for what a browser sends on behalf of another site: a non-loopback Origin, or a Host that
    names another domain (a rebinding attack's). Programs such as Claude Code send no Origin."""
    origin = headers.get("origin")
    if origin is not None and not is_loopback_name(hostname_of(origin)):
        return False
    host = headers.get("host")
    return host is None or is_loopback_name(hostname_of(f"//{host}"))


def hostname_of(url: str) -> Optional[str]:
    try:
        return urlsplit(url).hostname
    except ValueError:  # an unbalanced bracket
        return None
