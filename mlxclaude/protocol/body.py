"""A request body's bytes → JSON value, refusing what would break the layers after it. Pure.

Refused with a 400: bytes that are not UTF-8 or not JSON, nesting deeper than the cap (deep enough
nesting makes the JSON parser itself fail with RecursionError, and validation after it would recurse
too), and strings holding an unpaired UTF-16 surrogate (`"\\ud800"`: valid JSON, but no tokenizer can
encode it).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from mlxclaude.protocol.errors import ApiError
from mlxclaude.protocol.limits import MAX_JSON_DEPTH

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_json(reason: str) -> ApiError:
    return ApiError.invalid_request(f"request body is not valid JSON: {reason}")


def decode_json_body(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_json(f"invalid UTF-8 at byte {exc.start}") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise ApiError.invalid_request(f"request body nests deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise _not_json(str(exc)) from None
    check_structure(value, max_depth=max_depth, strings=bool(_SURROGATE_ESCAPE.search(raw)))
    return value


def check_structure(value: Any, *, max_depth: int, strings: bool) -> None:
    """Walk `value` without recursion: its depth, and (when `strings`) every string and key for surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
            if strings:
                for key in item:
                    _check_string(key)
        elif isinstance(item, list):
            children = item
        else:
            if strings and isinstance(item, str):
                _check_string(item)
            continue
        if depth > max_depth:
            raise ApiError.invalid_request(f"request body nests deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def _check_string(text: str) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise _not_json(f"unpaired surrogate \\u{ord(found.group()):04x} in a string")
