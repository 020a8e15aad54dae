"""Prompt lookup by text, for copies the token index cannot see. Claude Code's Read shows a file `cat -n` style
(each line behind its number and a tab) and a tool call writes the same text JSON-escaped (an Edit's
old_string: newlines as `\\n`), so the reply's tokens never repeat the prompt's for more than a line. Here the
prompt's text is indexed twice — without the line numbers, and that again JSON-escaped — and the tail of the
reply is looked up in both; what follows it there is the draft, as text (the caller tokenizes it). Pure."""

from __future__ import annotations

import json
import re

LINE_NUMBER = re.compile(r"(?m)^ *\d+\t")  # `cat -n`: "     12\t"
KEYS = (48, 24, 12)  # characters of the reply's tail to look up, longest first
DRAFT_CHARS = 64
MIN_SOURCE = 200  # a prompt shorter than this has nothing worth copying


class TextLookup:
    def __init__(self, prompt_text: str) -> None:
        plain = LINE_NUMBER.sub("", prompt_text)
        self.sources = (plain, json.dumps(plain, ensure_ascii=False)[1:-1]) if len(plain) >= MIN_SOURCE else ()

    def continuation(self, tail: str, limit: int = DRAFT_CHARS) -> str:
        """What followed the longest of the tail's last KEYS characters at its latest place in the prompt."""
        for size in KEYS:
            if len(tail) < size:
                continue
            key = tail[-size:]
            for source in self.sources:
                at = source.rfind(key)
                if at >= 0 and at + size < len(source):
                    return source[at + size:at + size + limit]
        return ""
