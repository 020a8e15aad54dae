"""Tool-call formats, one module per model family; the chat template tells which one a model uses.

    hermes       Qwen2.5, Qwen3, Hermes, SmolLM3   <tool_call>{"name": …, "arguments": {…}}</tool_call>
    qwen3_coder  Qwen3-Coder, Qwen3.5             <tool_call><function=NAME><parameter=P>v</parameter></function></tool_call>
    glm          GLM-4.5 / 4.6 / 4.7              <tool_call>NAME<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>
    mistral      Mistral v3 / v7 / Devstral       [TOOL_CALLS][{…}]  or  [TOOL_CALLS]NAME[ARGS]{…}
    llama3       Llama 3.1 / 3.2 / 3.3            {"name": …, "parameters": {…}}  (bare or after <|python_tag|>)
    harmony      gpt-oss                          <|channel|>commentary to=functions.NAME …<|message|>{…}<|call|>
    gemma        Gemma 3 (no template support)    ```tool_code\\nNAME(k=v)\\n```
    generic      any template without tools       Hermes markup, described in a system-prompt section
"""

from __future__ import annotations

from dataclasses import replace

from mlxclaude.parsing.tools.format import BodyParser, CallMarker, ToolFormat
from mlxclaude.parsing.tools.gemma import GEMMA, gemma_tool_system_prompt
from mlxclaude.parsing.tools.generic import GENERIC, generic_tool_system_prompt
from mlxclaude.parsing.tools.glm import GLM
from mlxclaude.parsing.tools.harmony import HARMONY
from mlxclaude.parsing.tools.hermes import HERMES, parse_hermes
from mlxclaude.parsing.tools.llama3 import LLAMA3
from mlxclaude.parsing.tools.mistral import MISTRAL
from mlxclaude.parsing.tools.qwen3_coder import QWEN3_CODER

# Template-supported families, checked in order: more specific first (Qwen3-Coder and GLM templates
# also contain "<tool_call>"; a Harmony template has no other family's markers).
KNOWN_TOOL_FORMATS: tuple[ToolFormat, ...] = (HARMONY, QWEN3_CODER, GLM, MISTRAL, LLAMA3, HERMES)
# Families for templates without tool support, prompted through the system message.
PROMPTED_TOOL_FORMATS: tuple[ToolFormat, ...] = (GEMMA, GENERIC)

FORMATS_BY_NAME: dict[str, ToolFormat] = {fmt.name: fmt for fmt in KNOWN_TOOL_FORMATS + PROMPTED_TOOL_FORMATS}


def template_supports_tools(chat_template: str) -> bool:
    """Whether the template does anything with `tools` (a Jinja variable it reads)."""
    return "tools" in chat_template


def template_renders_tool_calls(chat_template: str) -> bool:
    return "tool_calls" in chat_template


def detect_tool_format(chat_template: str | None, *, override: str | None = None) -> ToolFormat:
    """The tool-call format of a model, from its chat template (or `override`, a name in FORMATS_BY_NAME).

    A template that names no known family's markup gets GEMMA (Gemma turn markers) or GENERIC: tools
    are then described in the system prompt and history is rendered as text. A known family whose
    template shows tools but can't render `tool_calls` in history (SmolLM3) keeps its markup and gets
    its history rendered as text.
    """
    if override:
        try:
            return FORMATS_BY_NAME[override.strip().lower()]
        except KeyError:
            known = ", ".join(sorted(FORMATS_BY_NAME))
            raise ValueError(f"unknown tool format {override!r}; known formats: {known}") from None
    template = chat_template or ""
    if template_supports_tools(template):
        for fmt in KNOWN_TOOL_FORMATS:
            if fmt.is_used_by(template):
                if fmt.native_history and not template_renders_tool_calls(template):
                    return replace(fmt, native_history=False)
                return fmt
    return next(fmt for fmt in PROMPTED_TOOL_FORMATS if fmt.is_used_by(template))


__all__ = [
    "FORMATS_BY_NAME",
    "GEMMA",
    "GENERIC",
    "GLM",
    "HARMONY",
    "HERMES",
    "KNOWN_TOOL_FORMATS",
    "LLAMA3",
    "MISTRAL",
    "PROMPTED_TOOL_FORMATS",
    "QWEN3_CODER",
    "BodyParser",
    "CallMarker",
    "ToolFormat",
    "detect_tool_format",
    "gemma_tool_system_prompt",
    "generic_tool_system_prompt",
    "parse_hermes",
]
