"""build_env is pure: a table of inputs and the Claude Code environment they give."""

from __future__ import annotations

import pytest

from mlxclaude.claude import build_env, local_model_id
from mlxclaude.claude.env import AUTO_COMPACT_WINDOW_MIN, ENV_KEYS, OUTPUT_RESERVE_CAP, autocompact_pct, compact_threshold, output_budget

BASE = dict(base_url="http://127.0.0.1:8765", token="tok-123", model_id="claude-local-qwen3-4b")


def env(**overrides):
    return build_env(**{**BASE, "context_length": 131072, **overrides})


def test_endpoint_credentials_and_models():
    result = env()
    assert result["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8765"
    assert result["ANTHROPIC_AUTH_TOKEN"] == "tok-123"
    assert result["ANTHROPIC_API_KEY"] == ""          # a stray real key is never sent
    for key in ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                "ANTHROPIC_DEFAULT_HAIKU_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL"):
        assert result[key] == "claude-local-qwen3-4b"


def test_fixed_values():
    result = env()
    assert result["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"
    assert result["API_TIMEOUT_MS"] == "3000000"
    assert 300_000 <= int(result["CLAUDE_STREAM_IDLE_TIMEOUT_MS"]) <= 1_800_000
    for key in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING",
                "DISABLE_AUTOUPDATER"):
        assert result[key] == "1"


def test_every_value_is_a_string_and_every_key_is_known():
    for context in (4096, 32768, 131072, 1_048_576, None):
        result = env(context_length=context)
        assert all(isinstance(value, str) for value in result.values())
        assert set(result) <= set(ENV_KEYS)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765/", "http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1/",
                                 " http://127.0.0.1:8765 "])
def test_base_url_is_normalised(url):
    assert env(base_url=url)["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8765"


def test_no_token_still_sends_a_credential():
    assert env(token=None)["ANTHROPIC_AUTH_TOKEN"] == "mlxclaude"
    assert env(token="")["ANTHROPIC_AUTH_TOKEN"] == "mlxclaude"


@pytest.mark.parametrize("context, max_output, expected", [
    (4096, None, 1024),          # floor
    (32768, None, 8192),         # a quarter of the window
    (65536, None, 16384),
    (131072, None, 32000),       # Claude Code's own default is the ceiling
    (1_048_576, None, 32000),
    (131072, 4000, 4000),        # the daemon's cap wins
    (131072, 500_000, 128_000),  # Claude Code caps it there anyway
    (None, None, None),          # unknown context: Claude Code's default
    (None, 2048, 2048),
])
def test_max_output_tokens(context, max_output, expected):
    assert output_budget(context, max_output) == expected
    result = env(context_length=context, max_output_tokens=max_output)
    assert result.get("CLAUDE_CODE_MAX_OUTPUT_TOKENS") == (None if expected is None else str(expected))


@pytest.mark.parametrize("context, window", [
    (100_000, "100000"),
    (131072, "131072"),
    (262144, "262144"),
    (1_048_576, "1000000"),      # top of the documented 100000..1000000 range
    (32768, "100000"),           # bottom of it: the threshold override does the rest
])
def test_context_and_compact_window_respect_the_documented_bounds(context, window):
    result = env(context_length=context)
    assert result["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == str(context)
    assert result["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == window
    assert 100_000 <= int(result["CLAUDE_CODE_AUTO_COMPACT_WINDOW"]) <= 1_000_000


def test_unknown_context_sets_no_context_keys():
    result = env(context_length=None)
    assert not {"CLAUDE_CODE_MAX_CONTEXT_TOKENS", "CLAUDE_CODE_AUTO_COMPACT_WINDOW",
                "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"} & set(result)


def test_small_window_with_a_claude_id_lowers_the_compact_threshold():
    result = env(context_length=32768)
    pct = int(result["CLAUDE_AUTOCOMPACT_PCT_OVERRIDE"])
    assert pct == 12
    # Claude Code sees a 100000 window; pct of its usable part must not pass the real window's threshold
    usable = AUTO_COMPACT_WINDOW_MIN - min(8192, OUTPUT_RESERVE_CAP)
    assert usable * pct // 100 <= compact_threshold(32768, 8192) < usable * (pct + 1) // 100


def test_small_window_with_a_non_claude_id_needs_no_override():
    # MAX_CONTEXT_TOKENS applies directly to ids that don't start with claude- (§8.2)
    result = env(model_id="local-qwen3", context_length=32768)
    assert result["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "32768"
    assert "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE" not in result


def test_large_windows_need_no_override():
    assert "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE" not in env(context_length=100_000)
    assert "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE" not in env(context_length=262144)


@pytest.mark.parametrize("context, max_output", [(2048, 512), (8192, 2048), (16384, 4096), (49152, 12288),
                                                 (65536, 16384), (99_999, 24_999)])
def test_pct_override_is_within_bounds_and_monotonic(context, max_output):
    pct = autocompact_pct(context, max_output)
    assert 1 <= pct <= 100
    assert autocompact_pct(context + 4096, max_output) >= pct


def test_invalid_inputs():
    with pytest.raises(ValueError):
        env(model_id="")
    with pytest.raises(ValueError):
        env(context_length=0)
    with pytest.raises(ValueError):
        env(max_output_tokens=-1)
    with pytest.raises(ValueError):
        env(base_url="/v1")


def test_is_pure():
    first = env()
    first["ANTHROPIC_MODEL"] = "changed"
    assert env() != first and env() == env()


@pytest.mark.parametrize("name, expected", [
    ("mlx-community/Qwen3-4B-4bit", "claude-local-mlx-community-qwen3-4b-4bit"),
    ("claude-mine", "claude-mine"),
    ("???", "claude-local-model"),
])
def test_local_model_id_mirrors_the_server(name, expected):
    assert local_model_id(name) == expected
    from types import SimpleNamespace

    from mlxclaude.server.meta import model_alias

    assert model_alias(SimpleNamespace(name=name)) == expected


def test_small_context_warning():
    from mlxclaude.claude.env import context_warning

    assert context_warning(None) is None and context_warning(65536) is None
    assert "32768 tokens" in context_warning(32768)


# --- routes configured: Claude Code keeps its own model ids -----------------------------------------

OVERRIDES = ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
             "CLAUDE_CODE_SUBAGENT_MODEL")


def test_kept_tiers_set_only_the_haiku_id_the_route_matches():
    result = env(keep_tiers=True, haiku_model="claude-haiku-4-5")
    assert not any(key in result for key in OVERRIDES)
    assert result["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "claude-haiku-4-5"
    assert result["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8765" and result["ANTHROPIC_API_KEY"] == ""
    assert set(result) <= set(ENV_KEYS) and all(isinstance(value, str) for value in result.values())


def test_kept_tiers_without_a_haiku_route_leave_haiku_alone_too():
    result = env(keep_tiers=True)
    assert not any(key in result for key in (*OVERRIDES, "ANTHROPIC_DEFAULT_HAIKU_MODEL"))


def test_kept_tiers_compact_as_for_a_claude_id():
    """Claude Code sends claude-* ids then: below 100k only the percent override moves its threshold."""
    small = env(keep_tiers=True, context_length=65536)
    assert "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE" in small
    assert "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE" not in env(keep_tiers=True, context_length=131072)
