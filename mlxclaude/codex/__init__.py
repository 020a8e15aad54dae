"""Codex CLI: find it and launch it wired to the daemon's Responses API (`mlxclaude run --client codex`)."""

from mlxclaude.codex.launch import codex_argv, find_codex, launch_codex, require_codex, run_codex

__all__ = ["codex_argv", "find_codex", "launch_codex", "require_codex", "run_codex"]
