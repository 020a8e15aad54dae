"""The environment Claude Code needs to talk to the local daemon. PURE: no I/O, no os.environ.

Every variable name comes from the Claude Code env-var reference (shared/reference/anthropic-api.md §8.1);
the compaction arithmetic mirrors Claude Code 2.1.x (read from the 2.1.197 binary) so the window we ask
for is the window it uses.
"""

from __future__ import annotations

import math
import re
from typing import Optional

# -- limits Claude Code documents or enforces -------------------------------------------------------

API_TIMEOUT_MS = 3_000_000            # 50 min per request: a cold 100k-token prefill on a laptop takes minutes (oMLX uses the same)
STREAM_IDLE_TIMEOUT_MS = 1_800_000    # the byte-watchdog cap (30 min); the floor is 300000, too short for a slow prefill
AUTO_COMPACT_WINDOW_MIN = 100_000     # CLAUDE_CODE_AUTO_COMPACT_WINDOW is clamped into 100000..1000000
AUTO_COMPACT_WINDOW_MAX = 1_000_000
CLAUDE_DEFAULT_WINDOW = 200_000       # what Claude Code assumes for any `claude-*` id it does not know
DEFAULT_MAX_OUTPUT = 32_000           # Claude Code's default max_tokens for unrecognised ids
MAX_OUTPUT_CAP = 128_000              # Claude Code caps CLAUDE_CODE_MAX_OUTPUT_TOKENS here for unrecognised ids
MIN_MAX_OUTPUT = 1_024
OUTPUT_RESERVE_CAP = 20_000           # Claude Code reserves min(max output, 20000) of the window for the reply
AUTOCOMPACT_BUFFER = 13_000           # ... and auto-compacts 13000 tokens before the rest is full
SMALL_CONTEXT = 48_000                # oMLX refuses below 48K: Claude Code's system prompt and tools take 10-20k
PLACEHOLDER_TOKEN = "mlxclaude"       # a server without a token accepts anything, but Claude Code wants a credential

TIERS = ("ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL")
HAIKU_TIER = "ANTHROPIC_DEFAULT_HAIKU_MODEL"
# the haiku id set when config.toml routes by Claude Code's ids and a route catches it (`*haiku*`)
CLAUDE_HAIKU_ID = "claude-haiku-4-5"
# what Claude Code sends for its other tiers (for saying which backend answers them)
CLAUDE_OPUS_ID = "claude-opus-4-8"
CLAUDE_SONNET_ID = "claude-sonnet-4-6"

# Every key build_env can emit: `settings show` and `unwire` use it to tell our keys from the user's.
ENV_KEYS = (
    "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", *TIERS,
    "CLAUDE_CODE_SUBAGENT_MODEL", "CLAUDE_CODE_ATTRIBUTION_HEADER", "API_TIMEOUT_MS",
    "CLAUDE_STREAM_IDLE_TIMEOUT_MS", "CLAUDE_CODE_MAX_OUTPUT_TOKENS", "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
    "CLAUDE_CODE_AUTO_COMPACT_WINDOW", "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING",
    "DISABLE_AUTOUPDATER",
)
SECRET_KEYS = frozenset({"ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY"})


def build_env(*, base_url: str, token: Optional[str], model_id: Optional[str], context_length: Optional[int],
              max_output_tokens: Optional[int] = None, keep_tiers: bool = False,
              haiku_model: Optional[str] = None) -> dict[str, str]:
    """Claude Code's environment for one local model. `context_length=None` (unknown) leaves the
    context variables out, so Claude Code keeps its own defaults.

    `keep_tiers` (config.toml has routes): Claude Code keeps its own model ids (claude-opus-…,
    claude-sonnet-…), which the daemon's routes match, so neither ANTHROPIC_MODEL nor the opus, sonnet
    and subagent overrides are set; only the haiku tier is, to `haiku_model` when given (an id the haiku
    route matches)."""
    if not model_id and not keep_tiers:
        raise ValueError("model_id is empty")
    if context_length is not None and context_length <= 0:
        raise ValueError(f"context_length must be positive, got {context_length}")
    if max_output_tokens is not None and max_output_tokens <= 0:
        raise ValueError(f"max_output_tokens must be positive, got {max_output_tokens}")

    env: dict[str, str] = {
        # Claude Code appends /v1/messages itself; a base URL ending in /v1 would 404 (claude-code#20416)
        "ANTHROPIC_BASE_URL": normalize_base_url(base_url),
        # sent as Bearer and takes effect at once, with no "approve this API key" prompt (§8.1)
        "ANTHROPIC_AUTH_TOKEN": token or PLACEHOLDER_TOKEN,
        # empty so a real key exported in the shell (or set in settings) is never sent to the local server
        "ANTHROPIC_API_KEY": "",
    }
    if keep_tiers:
        if haiku_model:   # titles, summaries and other small calls: the model the haiku route names
            env[HAIKU_TIER] = haiku_model
    else:
        # beats a `model` key in settings.json (a full claude-* id there would pick another window);
        # --model and /model still win
        env["ANTHROPIC_MODEL"] = model_id
        # the aliases (opus/sonnet/haiku: HAIKU also runs titles and summaries) all resolve to the one model
        env.update({tier: model_id for tier in TIERS})
        env["CLAUDE_CODE_SUBAGENT_MODEL"] = model_id   # subagents, teams and workflows use it too
    # no per-request attribution block at the top of the system prompt: it busts the KV prefix cache (§8.6)
    env["CLAUDE_CODE_ATTRIBUTION_HEADER"] = "0"
    env["API_TIMEOUT_MS"] = str(API_TIMEOUT_MS)
    # the daemon pings every ~10 s, but an upstream engine may be silent for the whole prefill
    env["CLAUDE_STREAM_IDLE_TIMEOUT_MS"] = str(STREAM_IDLE_TIMEOUT_MS)

    max_output = output_budget(context_length, max_output_tokens)
    if max_output is not None:
        # what Claude Code asks for as max_tokens and reserves in its window arithmetic
        env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(max_output)
    if context_length is not None:
        # with kept tiers, Claude Code sends its own claude-* ids, and its window arithmetic is theirs
        window_id = CLAUDE_HAIKU_ID if keep_tiers else model_id
        env.update(context_env(window_id, context_length, max_output or DEFAULT_MAX_OUTPUT))

    # nothing leaves the machine: no autoupdate, telemetry, error reports, release notes (§8.1)
    env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
    env["DISABLE_TELEMETRY"] = "1"
    env["DISABLE_ERROR_REPORTING"] = "1"
    env["DISABLE_AUTOUPDATER"] = "1"
    return env


def normalize_base_url(url: str) -> str:
    """`http://127.0.0.1:8765/v1/` → `http://127.0.0.1:8765`."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")].rstrip("/")
    if not url:
        raise ValueError("base_url is empty")
    return url


def output_budget(context_length: Optional[int], max_output_tokens: Optional[int]) -> Optional[int]:
    """CLAUDE_CODE_MAX_OUTPUT_TOKENS: the explicit cap, else a quarter of the context up to Claude Code's
    own default of 32000 (32000 out of a 32k window would leave no room for the prompt)."""
    if max_output_tokens is not None:
        return min(max_output_tokens, MAX_OUTPUT_CAP)
    if context_length is None:
        return None
    return min(DEFAULT_MAX_OUTPUT, max(MIN_MAX_OUTPUT, context_length // 4))


def is_claude_id(model_id: str) -> bool:
    """Ids starting with `claude-` get Claude Code's built-in 200k window: CLAUDE_CODE_MAX_CONTEXT_TOKENS
    is then ignored (unless DISABLE_COMPACT, which turns compaction off altogether) (§8.2)."""
    return model_id.strip().lower().startswith("claude-")


def context_env(model_id: str, context_length: int, max_output: int) -> dict[str, str]:
    """Make Claude Code compact before the model's real window is full."""
    env = {
        # the window Claude Code assumes; honoured for ids that don't start with `claude-`
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(context_length),
        # honoured for every id, but only within 100000..1000000, and never above the assumed window
        "CLAUDE_CODE_AUTO_COMPACT_WINDOW": str(_clamp(context_length, AUTO_COMPACT_WINDOW_MIN,
                                                      AUTO_COMPACT_WINDOW_MAX)),
    }
    if context_length < AUTO_COMPACT_WINDOW_MIN and is_claude_id(model_id):
        # Below 100k with a claude-* id, Claude Code's window stays at 100000 whatever we say, and
        # DISABLE_COMPACT (the only way to make MAX_CONTEXT_TOKENS apply) would turn compaction off.
        # So lower the auto-compact threshold instead, to where a true `context_length` window puts it.
        env["CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"] = str(autocompact_pct(context_length, max_output))
    return env


def compact_threshold(window: int, max_output: int) -> int:
    """The prompt size at which Claude Code auto-compacts in a window, with no override (its own
    arithmetic: window - min(max output, 20000) - 13000). With CLAUDE_AUTOCOMPACT_PCT_OVERRIDE=P it is
    min(P% of (window - min(max output, 20000)), that)."""
    return window - min(max_output, OUTPUT_RESERVE_CAP) - AUTOCOMPACT_BUFFER


def autocompact_pct(context_length: int, max_output: int) -> int:
    """CLAUDE_AUTOCOMPACT_PCT_OVERRIDE that moves the threshold of a 100000 window down to that of
    `context_length` (rounded down: compacting a little early is safe, late is not). At least 1:
    a window too small for Claude Code's own buffers compacts at once."""
    usable = AUTO_COMPACT_WINDOW_MIN - min(max_output, OUTPUT_RESERVE_CAP)
    target = compact_threshold(context_length, max_output)
    return _clamp(math.floor(100 * target / usable), 1, 100)


def local_model_id(name: str) -> str:
    """The id the daemon's /health reports for a model name (mirror of server.meta.model_alias), for
    when the daemon is not running. `mlx-community/Qwen3-4B` → `claude-local-mlx-community-qwen3-4b`."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
    return slug if slug.startswith("claude-") else f"claude-local-{slug}"


def context_warning(context_length: Optional[int]) -> Optional[str]:
    """A one-line warning when the window is too small for Claude Code to work in comfortably."""
    if context_length is None or context_length >= SMALL_CONTEXT:
        return None
    return (f"the model's context is {context_length} tokens; Claude Code's system prompt and tools alone take "
            f"10-20k, so it will compact often (at least {SMALL_CONTEXT // 1000}k is recommended)")


def redact(key: str, value: object) -> object:
    """Values as `settings show` prints them: secrets masked, the rest as is."""
    if key in SECRET_KEYS and isinstance(value, str) and value:
        return "****" + value[-4:] if len(value) > 8 else "****"
    return value


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
