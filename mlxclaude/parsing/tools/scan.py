"""Incremental scanners for streamed call bodies: where a call ends, without being fooled by its contents."""

from __future__ import annotations

import json
from typing import Any

# Regions of XML-ish bodies whose contents are raw values: a close marker inside them is data.
VALUE_REGIONS: tuple[tuple[str, str], ...] = (("<parameter=", "</parameter>"), ("<arg_value>", "</arg_value>"))


class CloseScanner:
    """Finds the close marker of a call body streamed chunk by chunk; each character is examined once.

    The body's kind is decided by its first non-space character: `{`, `[`, `(` or a quote is JSON (or
    code), where the marker doesn't count inside a quoted string; anything else is XML-ish (Qwen3-Coder,
    GLM), where it doesn't count inside a parameter value. `feed` takes only the new text and returns
    the index of the marker in the whole body, once it has come.
    """

    def __init__(self, close: str, quotes: str = '"', kind: str = "auto") -> None:
        self.close = close
        self.quotes = quotes
        self._kind: str | None = None if kind == "auto" else kind  # "code" | "xml"
        self._window = ""  # text not yet decided on
        self._offset = 0  # index in the body of the window's first character
        self._quote: str | None = None
        self._escape = False
        self._region_close: str | None = None

    def feed(self, text: str) -> int | None:
        if not self.close:
            return None
        self._window += text
        if self._kind is None:
            stripped = self._window.lstrip()
            if not stripped:
                return None
            self._kind = "code" if stripped[0] in "{[(" or stripped[0] in self.quotes else "xml"
        found = self._find_code() if self._kind == "code" else self._find_xml()
        return None if found is None else self._offset + found

    def _consume(self, count: int) -> None:
        self._window = self._window[count:]
        self._offset += count

    def _find_code(self) -> int | None:
        window, close, first = self._window, self.close, self.close[0]
        i, n = 0, len(window)
        while i < n:
            char = window[i]
            if self._quote is not None:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                elif char == self._quote:
                    self._quote = None
            elif char in self.quotes:
                self._quote = char
            elif char == first:
                if window.startswith(close, i):
                    self._consume(i)
                    return 0
                if close.startswith(window[i:]):
                    break  # may be the start of the marker: look again when more comes
            i += 1
        self._consume(i)
        return None

    def _find_xml(self) -> int | None:
        while True:
            window = self._window
            if self._region_close is not None:
                end = window.find(self._region_close)
                if end < 0:
                    self._consume(max(0, len(window) - len(self._region_close) + 1))
                    return None
                self._consume(end + len(self._region_close))
                self._region_close = None
                continue
            candidates: list[tuple[int, str, str | None]] = [(window.find(self.close), self.close, None)]
            candidates += [(window.find(open_), open_, close_) for open_, close_ in VALUE_REGIONS]
            found = [c for c in candidates if c[0] >= 0]
            if not found:
                longest = max(len(self.close), *(len(o) for o, _ in VALUE_REGIONS))
                self._consume(max(0, len(window) - longest + 1))
                return None
            start, marker, region_close = min(found, key=lambda c: (c[0], c[2] is not None))
            if region_close is None:
                self._consume(start)
                return 0
            self._consume(start + len(marker))
            self._region_close = region_close


class JsonValueScanner:
    """Finds where the JSON value starting at a `{` or `[` ends, fed chunk by chunk.

    `feed(text)` takes the text from the value's first character on (in pieces) and returns the end
    offset (exclusive, from that first character) once it is known, None while incomplete, or -1 when
    brackets mismatch. `first_key` is the first key of the outermost object, once read.
    """

    PAIRS = {"{": "}", "[": "]"}

    def __init__(self) -> None:
        self._pos = 0  # offset of the next character to read
        self._stack: list[str] = []
        self._in_string = False
        self._escape = False
        self._key: list[str] | None = None
        self.first_key: str | None = None
        self.result: int | None = None

    def feed(self, text: str) -> int | None:
        if self.result is not None:
            return self.result
        for i, char in enumerate(text):
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                elif char == '"':
                    self._in_string = False
                    if self._key is not None:
                        self.first_key, self._key = "".join(self._key), None
                        continue
                if self._key is not None:
                    self._key.append(char)
            elif char == '"':
                self._in_string = True
                if self.first_key is None and self._key is None and self._stack and self._stack[-1] == "}":
                    self._key = []
            elif char in self.PAIRS:
                self._stack.append(self.PAIRS[char])
            elif char in "}]":
                if not self._stack or self._stack.pop() != char:
                    self.result = -1
                    return -1
                if not self._stack:
                    self.result = self._pos + i + 1
                    return self.result
        self._pos += len(text)
        return None


def parse_json_sequence(text: str, separators: str = ";,") -> tuple[list[Any], str]:
    """Parse JSON values one after another (separated by whitespace or one of `separators`).

    Returns the values and the unparsed rest (stripped); the rest is "" when everything parsed.
    """
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and (text[pos].isspace() or (values and text[pos] in separators)):
            pos += 1
        if pos >= n:
            return values, ""
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError):
            return values, text[pos:].strip()
        values.append(value)
