"""mlxclaude: run Claude Code on a local MLX model."""

__version__ = "0.1.0"
