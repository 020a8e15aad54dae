"""Tool schemas the grammar engine can compile: checked once each, loosened when it can't.

A schema llguidance rejects is retried with its `lenient` option (unsupported keywords such as
`propertyNames` and unknown string formats are ignored); if that fails too, the tool's arguments are
constrained to "any JSON object". Either way it is logged once per tool and reason, and the parser
still coerces the arguments by the original schema.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional

from mlxclaude.engine.constraints.grammar import JSON_OPTIONS, ToolSpec
from mlxclaude.parsing.tools.catalog import tool_name_and_schema

ANY_OBJECT: dict[str, Any] = {"type": "object"}
Validator = Callable[[dict[str, Any], bool], str]  # (schema, lenient) -> "" if it compiles, else the error

_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def log_once(tool: str, reason: str, outcome: str) -> None:
    key = (tool, reason)
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    from mlxclaude.logs import log_event

    log_event("tool_schema_loosened", level="warning", tool=tool, reason=reason[:300], outcome=outcome)


def llguidance_validator(schema: dict[str, Any], lenient: bool) -> str:
    import llguidance

    options = dict(JSON_OPTIONS, lenient=True) if lenient else dict(JSON_OPTIONS)
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=options)
    except (ValueError, TypeError) as exc:
        return str(exc) or type(exc).__name__
    return llguidance.LLMatcher.validate_grammar(grammar)


def normalised(schema: Any) -> dict[str, Any]:
    """An arguments schema as a dict (a missing or odd one means any object); `$schema` dropped."""
    if not isinstance(schema, dict) or not schema:
        return dict(ANY_OBJECT)
    return {key: value for key, value in schema.items() if key not in ("$schema", "x-guidance")}


class SchemaChecker:
    """Turns request tools into ToolSpecs; each distinct schema is compiled once (a per-model cache)."""

    def __init__(self, validate: Validator = llguidance_validator, *, limit: int = 512) -> None:
        self._validate = validate
        self._cache: dict[str, tuple[dict[str, Any], bool]] = {}
        self._limit = limit

    def spec(self, name: str, schema: Any) -> ToolSpec:
        schema = normalised(schema)
        key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._check(name, schema)
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[key] = cached
        checked, lenient = cached
        return ToolSpec(name, checked, lenient)

    def _check(self, name: str, schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        error = self._safe(schema, False)
        if not error:
            return schema, False
        if not self._safe(schema, True):
            log_once(name, error, "compiled leniently (unsupported keywords ignored)")
            return schema, True
        log_once(name, error, "arguments constrained to any JSON object")
        return dict(ANY_OBJECT), False

    def _safe(self, schema: dict[str, Any], lenient: bool) -> str:
        try:
            return self._validate(schema, lenient)
        except Exception as exc:  # a validator crash must not cost the request
            return f"{type(exc).__name__}: {exc}"

    def specs(self, tools: list[Any], only: Optional[str] = None) -> list[ToolSpec]:
        """ToolSpecs for the request's tools (all, or the one named `only`), first of each name kept."""
        seen: set[str] = set()
        result = []
        for tool in tools:
            entry = tool_name_and_schema(tool)
            if entry is None or entry[0] in seen or (only is not None and entry[0] != only):
                continue
            seen.add(entry[0])
            result.append(self.spec(*entry))
        return result

    def output_schema(self, schema: Any) -> ToolSpec:
        """The structured-output schema, checked the same way (any JSON value if it won't compile)."""
        spec = self.spec("output_config.format", schema if isinstance(schema, dict) and schema else {})
        return spec
