"""Errors the CLI reports as one line (plus a hint) and an exit code; only cli.main exits."""

from __future__ import annotations


class MlxClaudeError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(MlxClaudeError):
    exit_code = 2


class ModelNotFound(MlxClaudeError):
    pass
