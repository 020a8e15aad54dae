"""Claude Code: find it, build its environment (pure), wire settings.json, launch it."""

from mlxclaude.claude.env import ENV_KEYS, build_env, local_model_id, normalize_base_url
from mlxclaude.claude.find import claude_version, find_claude, require_claude
from mlxclaude.claude.launch import launch_claude, run_claude
from mlxclaude.claude.settings_file import (
                                            UnwireResult,
                                            WireResult,
                                            claude_config_dir,
                                            settings_path,
                                            show_settings,
                                            unwire_settings,
                                            wire_settings,
)

__all__ = [
    "ENV_KEYS", "UnwireResult", "WireResult", "build_env", "claude_config_dir", "claude_version", "find_claude",
    "launch_claude", "local_model_id", "normalize_base_url", "require_claude", "run_claude", "settings_path",
    "show_settings", "unwire_settings", "wire_settings",
]
