"""Special-token strings in a request stay text: only the chat template's own markers become special tokens.

The chat template renders to text, which is then tokenized. Tokenized as it is, a user message or a tool result
(file contents, a web page: attacker-controlled in an agent) holding `<|im_end|>\\n<|im_start|>system\\n…` would
become real role delimiters and forge a turn. So, per tokenizer (built once, cached):

1. `escape`, before rendering: every special-token string (an added token marked special; non-special added
   tokens such as Qwen's `<tool_call>` or `<think>` stay as they are) in the request's strings, keys included, is
   replaced with a sentinel `QQmlxc<n>QQ`. Plain ASCII letters and digits survive what templates do to text
   (`tojson` with or without ensure_ascii, `trim`, `split` on other markers), and the letter around it (`Q`, or
   another one no special token contains) keeps it from joining text beside it into a special token. The
   sentinel's prefix is escaped too, so that restoring is exact.
2. `encode`, after rendering: the sentinels are put back (the true text), then
   - when none stood for a special token, the text is encoded exactly as before (same call, same ids);
   - otherwise the true text is encoded once with offsets, and each stretch between two of the template's own
     special tokens that held a restored string is encoded again with special tokens disabled (a private copy of
     the backend tokenizer, `encode_special_tokens=True`), as the whole-text encoding would have: no Metaspace
     prefix space unless it starts the text, whitespace next to an lstrip/rstrip marker dropped. Every other
     stretch keeps its ids, so a conversation tokenizes the same up to the message that holds the string, and
     the prompt cache still reuses it.
   A tokenizer without a `tokenizers` backend (a slow or custom one) encodes each restored string in two halves:
   never its special id, though not the tokens a fast tokenizer would give the text.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Optional

_SENTINEL_LETTERS = "QZXJKVWYqzxjkvwy\ue000\uf8ff"  # private-use last: JSON with ensure_ascii escapes them
_SENTINEL_BODY = "mlxc"

_cache: "weakref.WeakKeyDictionary[Any, SpecialTokens]" = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Encoded:
    """A rendered prompt with its sentinels restored: the true text, its token ids, and where the sentinels were."""

    text: str
    tokens: list[int]
    shifts: tuple[tuple[int, int], ...] = ()  # (end of a sentinel in the escaped text, true - escaped offset after it)

    def true_offset(self, escaped_offset: int) -> int:
        """The offset in `text` of a character offset in the escaped (rendered) text."""
        index = bisect_left(self.shifts, (escaped_offset + 1,)) - 1
        return escaped_offset + (self.shifts[index][1] if index >= 0 else 0)


def special_tokens(tokenizer: Any) -> "SpecialTokens":
    """The special-token guard of `tokenizer` (an mlx-lm TokenizerWrapper or a transformers tokenizer), built once."""
    try:
        found = _cache.get(tokenizer)
    except TypeError:  # neither hashable nor weakly referenceable: build it every time
        return SpecialTokens(tokenizer)
    if found is None:
        with _cache_lock:
            found = _cache.get(tokenizer)
            if found is None:
                found = _cache[tokenizer] = SpecialTokens(tokenizer)
    return found


def encode_rendered(tokenizer: Any, text: str) -> Encoded:
    """Token ids of text rendered from `escape`d messages (see SpecialTokens.encode)."""
    return special_tokens(tokenizer).encode(text)


def trie_pattern(strings: list[str]) -> str:
    """A regex matching any of `strings`, longest first, with shared prefixes factored out (hundreds of reserved
    tokens cost one walk down the trie, not one try each)."""
    trie: dict = {}
    for string in strings:
        node = trie
        for char in string:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie) if strings else "(?!)"


class SpecialTokens:
    """A tokenizer's special-token strings, and the escape/encode pair that keeps them text in a request."""

    def __init__(self, tokenizer: Any) -> None:
        try:  # the cache holds this per tokenizer: it must not keep the tokenizer alive
            self._tokenizer: Any = weakref.ref(tokenizer)
        except TypeError:
            self._tokenizer = lambda: tokenizer
        self.backend = _backend_of(tokenizer)
        self.flags: dict[str, tuple[bool, bool]] = {}  # content -> (lstrip, rstrip)
        self.ids: set[int] = set()
        for token_id, token in _special_added_tokens(tokenizer, self.backend):
            self.flags[token.content] = (bool(getattr(token, "lstrip", False)), bool(getattr(token, "rstrip", False)))
            self.ids.add(int(token_id))
        self.strings = sorted(self.flags)
        pattern = trie_pattern(self.strings)
        self.pattern = re.compile(pattern)
        letter = next((c for c in _SENTINEL_LETTERS if not any(c in s for s in self.strings)
                       and not self.pattern.search(_SENTINEL_BODY + "0123456789")), None)
        if letter is None:  # pragma: no cover - every letter is in some special token
            raise ValueError("no sentinel letter fits this tokenizer's special tokens")
        self.prefix, self.suffix = letter * 2 + _SENTINEL_BODY, letter * 2
        self.originals = [self.prefix, *self.strings]  # sentinel n stands for originals[n]
        self._sentinels = {original: f"{self.prefix}{n}{self.suffix}" for n, original in enumerate(self.originals)}
        self._escape_re = re.compile(f"{re.escape(self.prefix)}|{pattern}" if self.strings else re.escape(self.prefix))
        self._scan_re = re.compile(f"{re.escape(self.prefix)}(\\d+){re.escape(self.suffix)}|{pattern}")
        self._private: Optional[tuple[Any, Any]] = None  # (copy of the backend, the same with no prefix space)
        self._private_lock = threading.Lock()

    # --- before rendering ----------------------------------------------------------------------------------

    def escape(self, value: Any) -> Any:
        """`value` (a string, or dicts/lists/tuples of them) with special-token strings replaced by sentinels.

        Returns the very same object when there is nothing to replace.
        """
        if isinstance(value, str):
            if self._escape_re.search(value) is None:
                return value
            return self._escape_re.sub(lambda match: self._sentinels[match.group(0)], value)
        if isinstance(value, dict):
            items = [(self.escape(key), self.escape(item)) for key, item in value.items()]
            if all(new_key is key and new is item for (new_key, new), (key, item) in zip(items, value.items())):
                return value
            return dict(items)
        if isinstance(value, (list, tuple)):
            escaped = [self.escape(item) for item in value]
            if all(new is item for new, item in zip(escaped, value)):
                return value
            return type(value)(escaped) if isinstance(value, tuple) else escaped
        return value

    # --- after rendering -----------------------------------------------------------------------------------

    def encode(self, text: str) -> Encoded:
        """Restore the sentinels in rendered `text` and encode it: the template's special tokens are special,
        the restored strings are text."""
        if self.prefix not in text:
            return Encoded(text, self._encode(text))
        parts: list[str] = []
        real: list[tuple[int, int]] = []  # the template's special-token strings, in the true text
        restored: list[tuple[int, int]] = []  # special-token strings put back, in the true text
        shifts: list[tuple[int, int]] = []
        position = delta = 0
        for match in self._scan_re.finditer(text):
            start, end = match.span()
            if match.group(1) is None:
                real.append((start + delta, end + delta))
                continue
            index = int(match.group(1))
            if index >= len(self.originals):  # not one of ours: leave it as it is
                continue
            original = self.originals[index]
            parts += [text[position:start], original]
            if index:
                restored.append((start + delta, start + delta + len(original)))
            delta += len(original) - (end - start)
            shifts.append((end, delta))
            position = end
        parts.append(text[position:])
        true_text = "".join(parts)
        if not restored:
            tokens = self._encode(true_text)
        elif self.backend is not None:
            tokens = self._encode_guarded(true_text, real, restored)
        else:
            tokens = self._encode_in_pieces(true_text, restored)
        return Encoded(true_text, tokens, tuple(shifts))

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer().encode(text, add_special_tokens=False))

    def _encode_guarded(self, text: str, real: list[tuple[int, int]], restored: list[tuple[int, int]]) -> list[int]:
        whole = self._backend_encode(text, plain=False, at_start=True)
        ids, offsets = whole.ids, whole.offsets
        # The template's special tokens in the encoding: the stretches between them are encoded independently.
        boundaries: list[tuple[int, int]] = []  # (token index, index in `real`)
        k = 0
        for i, token in enumerate(ids):
            if token not in self.ids:
                continue
            start, end = offsets[i]
            while k < len(real) and real[k][1] <= start:
                k += 1  # a marker the encoding did not make special (as before): part of the stretch
            if k < len(real) and start <= real[k][0] and real[k][1] <= end:
                boundaries.append((i, k))
                k += 1
        restored_starts = [start for start, _ in restored]
        tokens: list[int] = []
        previous_token, char_start, previous_marker = -1, 0, None
        for i, k in [*boundaries, (len(ids), None)]:
            char_end = real[k][0] if k is not None else len(text)
            first = bisect_left(restored_starts, char_start)
            if first < len(restored_starts) and restored_starts[first] < char_end:
                stretch = text[char_start:char_end]
                if previous_marker is not None and self.flags[text[slice(*real[previous_marker])]][1]:
                    stretch = stretch.lstrip()  # the marker before it strips the whitespace after it (rstrip)
                if k is not None and self.flags[text[slice(*real[k])]][0]:
                    stretch = stretch.rstrip()
                if stretch:
                    tokens += self._backend_encode(stretch, plain=True, at_start=char_start == 0).ids
            else:
                tokens += ids[previous_token + 1:i]
            if k is not None:
                tokens.append(ids[i])
                previous_token, char_start, previous_marker = i, real[k][1], k
        return tokens

    def _backend_encode(self, text: str, *, plain: bool, at_start: bool) -> Any:
        """Encode with a private copy of the backend (nothing else toggles its special tokens or truncates)."""
        copy, rest = self._private_copies()
        tokenizer = copy if at_start else rest
        with self._private_lock:
            tokenizer.encode_special_tokens = plain
            try:
                return tokenizer.encode(text, add_special_tokens=False)
            finally:
                tokenizer.encode_special_tokens = False

    def _private_copies(self) -> tuple[Any, Any]:
        if self._private is None:
            with self._private_lock:
                if self._private is None:
                    self._private = _private_copies(self.backend)
        return self._private

    def _encode_in_pieces(self, text: str, restored: list[tuple[int, int]]) -> list[int]:
        tokens: list[int] = []
        position = 0
        for start, end in restored:
            if start > position:
                tokens += self._encode(text[position:start])
            original = text[start:end]
            halves = [original[:1], original[1:]]
            if any(self.pattern.search(half) for half in halves):
                halves = list(original)
            for half in halves:
                if half:
                    tokens += self._encode(half)
            position = end
        if position < len(text):
            tokens += self._encode(text[position:])
        return tokens


def _backend_of(tokenizer: Any) -> Any:
    """The `tokenizers.Tokenizer` behind a fast tokenizer (TokenizerWrapper forwards the attribute), or None."""
    try:
        from tokenizers import Tokenizer
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend if isinstance(backend, Tokenizer) else None


def _special_added_tokens(tokenizer: Any, backend: Any) -> list[tuple[int, Any]]:
    """(id, AddedToken) of the added tokens marked special: exactly those `encode_special_tokens` turns off."""
    if backend is not None:
        decoder = backend.get_added_tokens_decoder()
    else:
        decoder = dict(getattr(tokenizer, "added_tokens_decoder", None) or {})
        convert = getattr(tokenizer, "convert_tokens_to_ids", None)
        for content in (getattr(tokenizer, "all_special_tokens", None) or ()) if convert else ():
            token_id = convert(content)
            if isinstance(token_id, int) and token_id not in decoder:
                decoder[token_id] = _Named(content)
    return [(token_id, token) for token_id, token in sorted(decoder.items())
            if getattr(token, "special", False) and getattr(token, "content", "")]


@dataclass(frozen=True)
class _Named:
    content: str
    special: bool = True


def _private_copies(backend: Any) -> tuple[Any, Any]:
    """Two copies of the backend without truncation or padding: as it is, and (when its Metaspace pre-tokenizer
    adds a prefix space to the first piece only) one that never adds it, for stretches that don't start the text."""
    from tokenizers import Tokenizer

    serialized = backend.to_str()
    copy = _untruncated(Tokenizer.from_str(serialized))
    try:
        pre_tokenizer = json.loads(backend.pre_tokenizer.__getstate__()) if backend.pre_tokenizer is not None else None
    except Exception:  # no small serialisation of it: look in the whole spec
        pre_tokenizer = json.loads(serialized).get("pre_tokenizer")
    if not _no_prefix_space(pre_tokenizer):
        return copy, copy
    spec = json.loads(serialized)
    _no_prefix_space(spec.get("pre_tokenizer"))
    return copy, _untruncated(Tokenizer.from_str(json.dumps(spec)))


def _untruncated(tokenizer: Any) -> Any:
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _no_prefix_space(node: Any) -> bool:
    """Turn Metaspace's prepend_scheme "first" into "never" in a pre-tokenizer spec; True when it found one."""
    changed = False
    if isinstance(node, dict):
        if node.get("type") == "Metaspace" and node.get("prepend_scheme") == "first":
            node["prepend_scheme"] = "never"
            changed = True
        for value in node.values():
            changed = _no_prefix_space(value) or changed
    elif isinstance(node, list):
        for value in node:
            changed = _no_prefix_space(value) or changed
    return changed
