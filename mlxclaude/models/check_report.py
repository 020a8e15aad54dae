"""What `mlxclaude models check` reports: one line per check, in LINE_NAMES order, and the verdict they make."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional

Status = Literal["ok", "warn", "fail"]

LINE_NAMES = ("files", "load", "chat template", "tool format", "thinking", "memory", "context", "generation",
              "tool call", "speed")


@dataclass
class CheckLine:
    name: str
    status: Status
    detail: str


@dataclass
class CheckReport:
    model: str
    path: str
    lines: list[CheckLine] = field(default_factory=list)
    figures: dict[str, float | int | str] = field(default_factory=dict)
    advice: Optional[str] = None  # what would work instead, when Claude Code's prompt does not fit

    @property
    def fit_for_claude_code(self) -> bool:
        return not any(line.status == "fail" for line in self.lines)

    @property
    def verdict(self) -> str:
        failed = [line.name for line in self.lines if line.status == "fail" and not line.detail.startswith("skipped:")]
        warned = [line.name for line in self.lines if line.status == "warn"]
        if failed:
            return f"{self.model} is not fit for Claude Code on this machine (failed: {', '.join(failed)})."
        if warned:
            return f"{self.model} should work with Claude Code on this machine, with warnings ({', '.join(warned)})."
        return f"{self.model} is fit for Claude Code on this machine."

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "path": self.path,
            "fit_for_claude_code": self.fit_for_claude_code,
            "verdict": self.verdict,
            "lines": [asdict(line) for line in self.lines],
            "figures": dict(self.figures),
            "advice": self.advice,
        }
