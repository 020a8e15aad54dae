"""The README stays true: its settings table and its test command match the code and CI."""

from __future__ import annotations

import re
from pathlib import Path

from mlxclaude.config.registry import settings_markdown

REPO = Path(__file__).resolve().parents[1]


def test_settings_table_is_generated_from_the_registry():
    assert settings_markdown().strip() in (REPO / "README.md").read_text(), \
        "README settings table is stale: paste mlxclaude.config.registry.settings_markdown() into it"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_command = blocks[1].strip()  # the second command on the first screen
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == test_command
