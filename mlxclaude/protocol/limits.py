"""Caps on a Messages request, checked before any work that scales with it. Pure.

Each refusal is a 400 `invalid_request_error` naming the field and the cap (the body size is checked
earlier, by the server, as a 413). The caps are far above anything Claude Code sends (about 25 tools,
a few stop sequences, JSON nested ~12 deep) and low enough that no request can stall the server.
"""

from __future__ import annotations

MAX_BODY_BYTES = 32 * 1024 * 1024  # Anthropic's Messages limit is 32 MB; configurable as max_body_bytes
MAX_JSON_DEPTH = 64
MAX_MESSAGES = 100_000
MAX_TOOLS = 1_000
MAX_STOP_SEQUENCES = 1_000
MAX_STOP_SEQUENCE_CHARS = 1_000
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
MIN_THINKING_BUDGET = 1024
# No tokenizer packs more characters than this into a token on average, so a request whose text is
# longer than context × this is refused as too long before it is tokenized (which would take minutes).
MAX_CHARS_PER_TOKEN = 32
TYPICAL_CHARS_PER_TOKEN = 4  # for the token figure in that refusal, which is then an estimate
