"""The README stays true: its settings table and its test command match the code and CI."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

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


# --- links -----------------------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*)?\)")
REFERENCE_LINK = re.compile(r"(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
DOCUMENTS = ["README.md", *sorted(path.relative_to(REPO).as_posix() for path in (REPO / "docs").glob("**/*.md"))]


def prose(text: str) -> str:
    """The text without fenced code blocks: what looks like a link there is not one."""
    return re.sub(r"(?ms)^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", "", text)


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown and HTML links that are not URLs (scheme:) or anchors in the same page."""
    text = prose(text)
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + HTML_LINK.findall(text)
    return [target for target in targets if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|#", target)]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_relative_links_resolve_to_files_in_the_repository(document):
    path = REPO / document
    links = relative_links(path.read_text())
    missing = []
    for target in links:
        resolved = (path.parent / unquote(target.split("#", 1)[0])).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            missing.append(target)
    assert not missing, f"{document} links to what the repository does not hold: {missing}"


def test_the_readme_names_no_file_outside_the_repository():
    outside = re.findall(r"(?<![\w.~/])\.\./[\w./-]+", prose((REPO / "README.md").read_text()))
    assert not outside, f"README.md points outside the repository: {outside}"


def test_the_link_finder_sees_every_kind_of_link():
    text = ('See [design](docs/design.md#layout), ![logo](img/logo.png "Logo"), <a href="x/y.md">y</a>,\n'
            "[site](https://example.com), [top](#top) and\n[ref]: ../outside.md\n```\n[not](a/link.md)\n```\n")
    assert sorted(relative_links(text)) == ["../outside.md", "docs/design.md#layout", "img/logo.png", "x/y.md"]
