"""Repair a tool-call body whose intent is unambiguous; anything else is left to become text.

What is repaired:
- code fences around the JSON (```json … ```);
- trailing garbage after a complete JSON value (prose, a stray tag, extra closing brackets);
- single-quoted strings and Python literals True/False/None (the body read as a Python literal);
- a body cut short (at max_tokens) that is complete except for its closing brackets: not inside a
  string, not after a key, a colon or an opening bracket, not in the middle of a number or a word.
What is not: a string cut in the middle (its value would be truncated), a missing value, a key
without quotes, two calls run together without separators (the families parse those themselves).
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlxclaude.parsing.tools.calls import python_literal

MAX_REPAIR_CHARS = 1_000_000
_FENCE = re.compile(r"^```[A-Za-z0-9_\-]*[ \t]*\n?(.*?)(?:\n?```\s*)?$", re.DOTALL)
_COMPLETE_WORDS = ("true", "false", "null", "True", "False", "None")


def repair_call_body(body: str) -> dict[str, Any] | None:
    """The JSON object a call body was meant to be, or None when that isn't clear."""
    value = repair_json(body)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, dict) else None


def repair_json(text: str) -> Any:
    """The JSON object or array `text` was meant to be, or None. Never raises."""
    try:
        return _repair(text)
    except Exception:  # a repair must never take a reply down
        return None


def _repair(text: str) -> Any:
    text = _strip_fences(text.strip())
    if not text or len(text) > MAX_REPAIR_CHARS:
        return None
    start = _first_bracket(text)
    if start is None or text[:start].strip():
        return None
    text = text[start:]
    value = _loads(text)
    if value is not None:
        return value
    # A complete value followed by garbage.
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except (json.JSONDecodeError, RecursionError):
        value = None
    if isinstance(value, (dict, list)):
        return value
    # Single quotes / Python literals, possibly also cut short.
    value = _python(text)
    if value is not None:
        return value
    closed = close_brackets(text)
    if closed is None:
        return None
    return _loads(closed) if _loads(closed) is not None else _python(closed)


def _strip_fences(text: str) -> str:
    if text.startswith("```"):
        match = _FENCE.match(text)
        if match:
            return match.group(1).strip()
    return text


def _first_bracket(text: str) -> int | None:
    positions = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return min(positions) if positions else None


def _loads(text: str) -> Any:
    try:
        value = json.loads(text, strict=False)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _python(text: str) -> Any:
    try:
        value = python_literal(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def close_brackets(text: str) -> str | None:
    """`text` with its missing closing brackets added, if it was cut where a value had just ended."""
    stack: list[str] = []
    quote: str | None = None
    escape = False
    previous = ""  # the last significant character outside strings
    last_string_is_key = False
    for char in text:
        if quote is not None:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == quote:
                quote = None
            continue
        if char.isspace():
            continue
        if char in "\"'":
            quote = char
            last_string_is_key = bool(stack) and stack[-1] == "}" and previous in ("{", ",")
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not stack or stack.pop() != char:
                return None
        previous = char
    if quote is not None or not stack:
        return None  # cut inside a string, or nothing to close
    body = text.rstrip()
    if body.endswith(","):
        body = body[:-1].rstrip()
    last = body[-1:]
    if last in ("\"", "'"):
        complete = not last_string_is_key
    else:
        # Right after an opening bracket its contents were cut: not complete.
        complete = last in ("}", "]") or any(
            body.endswith(word) and not body[: -len(word)][-1:].isalnum() for word in _COMPLETE_WORDS
        )
    return body + "".join(reversed(stack)) if complete else None
