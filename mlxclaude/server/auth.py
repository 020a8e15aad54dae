"""Token check for x-api-key or Authorization: Bearer, in constant time."""

from __future__ import annotations

import hmac
from typing import Mapping, Optional

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
