"""Lark grammars (llguidance's dialect) for the text of one tool call, per tool-call family.

Pure: strings in, strings out; nothing here imports llguidance. A grammar describes what follows a
family's open marker up to and including its close marker (or the end of the reply for families
without one), with the tool name one of the request's tools and the arguments that tool's schema:

    hermes, generic    \\n? {"name": "<tool>", "arguments": <schema>} \\n? </tool_call>
    gemma              ```tool_code \\n? tool(key=<json>, …) \\n? ```     (and <tool_call> as hermes)
    qwen3_coder        \\n? <function=tool> <parameter=key>value</parameter>… </function> \\n? </tool_call>
    glm                tool \\n? <arg_key>key</arg_key><arg_value>value</arg_value>… </tool_call>
    llama3             {"name": "<tool>", "parameters": <schema>}        (then end of reply)
    mistral            [{"name": "<tool>", "arguments": <schema>}]       or  tool[ARGS]<schema> (v11 tokenizers)
    harmony            tool <|constrain|>json<|message|><schema><|call|>

XML-style values (qwen3_coder, glm) are raw text for string-typed parameters (anything up to the close
tag) and JSON for the others; parameters come in the schema's order, required ones mandatory.
Every `%json` block carries its own `x-guidance` options (see `json_block`).

A marker that is one special token of the model's vocabulary is written `<[id]>` (llguidance can't
match special tokens with string literals); `specials` maps such marker texts to their ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

# Separators as json.dumps writes them (what templates render), the compact form allowed too.
JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ?", "key_separator": ": ?"}


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the grammar needs it: its name and its arguments' schema (already checked/loosened)."""

    name: str
    schema: dict[str, Any]
    lenient: bool = False  # compile the schema with llguidance's `lenient` (unsupported keywords ignored)


Literal = Callable[[str], str]


def quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def literal_for(specials: Mapping[str, int]) -> Literal:
    """`text` as a Lark expression: `<[id]>` for a one-token special marker, else a quoted string."""

    def lit(text: str) -> str:
        token = specials.get(text)
        return f"<[{token}]>" if token is not None else quoted(text)

    return lit


def json_block(schema: Any, *, lenient: bool = False) -> str:
    options = dict(JSON_OPTIONS, lenient=True) if lenient else dict(JSON_OPTIONS)
    body = dict(schema) if isinstance(schema, dict) else {}
    body["x-guidance"] = options
    return "%json " + json.dumps(body, ensure_ascii=False)


# --- bodies -------------------------------------------------------------------------------------


class _Rules:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._names: set[str] = set()

    def add(self, name: str, expression: str) -> str:
        if name not in self._names:  # shared helper rules are defined once
            self._names.add(name)
            self.lines.append(f"{name}: {expression}")
        return name

    def text(self) -> str:
        return "\n".join(self.lines)


def _json_call_rules(rules: _Rules, tools: Sequence[ToolSpec], arguments_key: str) -> str:
    """`call: call_0 | call_1 …`, each `{"name": "<tool>", "<arguments_key>": <schema>}`."""
    alternatives = []
    for i, tool in enumerate(tools):
        head = "{" + f'"name": {quoted(tool.name)}, {quoted(arguments_key)}: '
        rules.add(f"args_{i}", json_block(tool.schema, lenient=tool.lenient))
        alternatives.append(rules.add(f"call_{i}", f'{quoted(head)} args_{i} "}}"'))
    return rules.add("call", " | ".join(alternatives))


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required") or []) if isinstance(schema.get("required"), list) else set()
    defs = {key: schema[key] for key in ("$defs", "definitions") if isinstance(schema.get(key), dict)}
    result = []
    for key, sub in properties.items():
        sub = sub if isinstance(sub, dict) else {}
        result.append((key, {**sub, **defs} if defs and "$ref" in json.dumps(sub) else sub, key in required))
    return result


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        found: set[str] = set()
        for option in options:
            if not isinstance(option, dict):
                return set()
            inner = _types(option)
            if not inner:
                return set()
            found |= inner
        return found
    if isinstance(schema.get("enum"), list):
        return {"string" if isinstance(v, str) else "other" for v in schema["enum"]}
    if "const" in schema:
        return {"string" if isinstance(schema["const"], str) else "other"}
    if "properties" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return set()


def _raw_value(rules: _Rules, name: str, schema: dict[str, Any], lenient: bool, text_rule: str,
               close: str) -> str:
    """A parameter value written raw (XML families): text up to `close` for strings, else JSON then `close`."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        choices = " | ".join(quoted(v) for v in enum)
        return rules.add(name, f'"\\n"? ({choices}) "\\n"? {quoted(close)}')
    types = _types(schema)
    if not types or "string" in types:
        return text_rule  # free text; the parser coerces it by the schema
    rules.add(f"{name}_json", json_block(schema, lenient=lenient))
    return rules.add(name, f'"\\n"? {name}_json "\\n"? {quoted(close)}')


def _lazy_text(rules: _Rules, name: str, close: str) -> str:
    """Any text up to (and including) the first `close`."""
    escaped = "".join("\\" + c if c in "/.*+?()[]{}|^$\\" else c for c in close)
    rules.lines.append(f"{name}[lazy]: /(?s:.*){escaped}/")
    return name


def _sequence(items: Sequence[tuple[str, bool]]) -> str:
    """Items in order, optional ones with `?`; an empty sequence is the empty string."""
    parts = [item if required else f"{item}?" for item, required in items]
    return " ".join(parts) if parts else '""'


def _qwen3_function_rules(rules: _Rules, tools: Sequence[ToolSpec]) -> list[str]:
    """Per tool, `NAME>` + parameters + `</function>` (the text after `<function=`)."""
    text = _lazy_text(rules, "param_text", "</parameter>")
    rests = []
    for i, tool in enumerate(tools):
        items = []
        for j, (key, sub, required) in enumerate(_properties(tool.schema)):
            value = _raw_value(rules, f"value_{i}_{j}", sub, tool.lenient, text, "</parameter>")
            items.append((rules.add(f"param_{i}_{j}", f'{quoted(f"<parameter={key}>")} {value} "\\n"?'), required))
        params = _sequence(items) if items else _any_keys(rules, "<parameter=", ">", text)
        rests.append(rules.add(f"function_{i}", f'{quoted(tool.name + ">")} "\\n"? {params} "</function>"'))
    return rests


def _any_keys(rules: _Rules, open_: str, close: str, text_rule: str) -> str:
    """Any parameters (a tool whose schema names none, or that had to be loosened to any object)."""
    rules.add("KEY_NAME", "/[A-Za-z0-9_.\\-]+/")
    return rules.add("any_params", f'({quoted(open_)} KEY_NAME {quoted(close)} {text_rule} "\\n"?)*')


def _glm_call_rules(rules: _Rules, tools: Sequence[ToolSpec]) -> str:
    text = _lazy_text(rules, "arg_text", "</arg_value>")
    alternatives = []
    for i, tool in enumerate(tools):
        items = []
        for j, (key, sub, required) in enumerate(_properties(tool.schema)):
            value = _raw_value(rules, f"value_{i}_{j}", sub, tool.lenient, text, "</arg_value>")
            head = f"<arg_key>{key}</arg_key>"
            items.append((rules.add(f"arg_{i}_{j}", f'{quoted(head)} "\\n"? "<arg_value>" {value} "\\n"?'), required))
        if not items:
            rules.add("KEY_NAME", "/[A-Za-z0-9_.\\-]+/")
        params = _sequence(items) if items else rules.add(
            "any_args", f'("<arg_key>" KEY_NAME "</arg_key>" "\\n"? "<arg_value>" {text} "\\n"?)*')
        alternatives.append(rules.add(f"call_{i}", f'{quoted(tool.name)} "\\n"? {params}'))
    return rules.add("call", " | ".join(alternatives))


def _python_call_rules(rules: _Rules, tools: Sequence[ToolSpec]) -> str:
    """`name(key=<json>, …)`: keyword arguments in schema order, comma-separated."""
    alternatives = []
    for i, tool in enumerate(tools):
        props = _properties(tool.schema)
        for j, (key, sub, _) in enumerate(props):
            rules.add(f"kwvalue_{i}_{j}", json_block(sub, lenient=tool.lenient))
            rules.add(f"kw_{i}_{j}", f'{quoted(key + "=")} kwvalue_{i}_{j}')
        # first_j: the arguments from j on, none written yet; rest_j: from j on, after one was written.
        n = len(props)
        rules.add(f"rest_{i}_{n}", '""')
        rules.add(f"first_{i}_{n}", '""')
        for j in range(n - 1, -1, -1):
            required = props[j][2]
            with_it = f'"," " "? kw_{i}_{j} rest_{i}_{j + 1}'
            rules.add(f"rest_{i}_{j}", with_it if required else f"({with_it}) | rest_{i}_{j + 1}")
            first = f"kw_{i}_{j} rest_{i}_{j + 1}"
            rules.add(f"first_{i}_{j}", first if required else f"({first}) | first_{i}_{j + 1}")
        alternatives.append(rules.add(f"call_{i}", f'{quoted(tool.name + "(")} first_{i}_0 ")"'))
    return rules.add("call", " | ".join(alternatives))


def _harmony_call_rules(rules: _Rules, tools: Sequence[ToolSpec], lit: Literal) -> str:
    # between the name and <|message|>: " <|constrain|>json" as generated, or "<|channel|>commentary json" as
    # the template writes history (recipient first)
    rules.add("header_part", f'" " | "json" | {lit("<|constrain|>")} | {lit("<|channel|>")} "commentary"')
    rules.add("constrain", "header_part{0,4}")
    alternatives = []
    for i, tool in enumerate(tools):
        rules.add(f"args_{i}", json_block(tool.schema, lenient=tool.lenient))
        alternatives.append(rules.add(f"call_{i}", f'{quoted(tool.name)} constrain {lit("<|message|>")} args_{i} '
                                                   f'{lit("<|call|>")}'))
    return rules.add("call", " | ".join(alternatives))


def _mistral_rules(rules: _Rules, tools: Sequence[ToolSpec], lit: Literal, specials: Mapping[str, int]) -> str:
    if "[ARGS]" in specials:  # v11 tokenizers (Devstral, Small 3.2): NAME[ARGS]{…}
        alternatives = []
        for i, tool in enumerate(tools):
            rules.add(f"args_{i}", json_block(tool.schema, lenient=tool.lenient))
            alternatives.append(rules.add(f"call_{i}", f'{quoted(tool.name)} {lit("[ARGS]")} args_{i}'))
        return rules.add("body", " | ".join(alternatives))
    call = _json_call_rules(rules, tools, "arguments")
    return rules.add("body", f'"[" {call} ("," " "? {call})* "]"')


# Which body each (family, open marker) gets; missing pairs are left unconstrained.
BodyBuilder = Callable[[_Rules, Sequence[ToolSpec], str, Literal, Mapping[str, int]], str]


def _tagged_json(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    call = _json_call_rules(rules, tools, "arguments")
    return rules.add("body", f'"\\n"? {call} "\\n"? {lit(close)}')


def _bare_llama3(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    call = _json_call_rules(rules, tools, "parameters")
    return rules.add("body", f'" "? {call}')


def _qwen3_wrapped(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    functions = _qwen3_function_rules(rules, tools)
    rules.add("function", " | ".join(functions))
    return rules.add("body", f'"\\n"? "<function=" function "\\n"? {lit(close)}')


def _qwen3_unwrapped(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    return rules.add("body", " | ".join(_qwen3_function_rules(rules, tools)))


def _glm(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    call = _glm_call_rules(rules, tools)
    return rules.add("body", f"{call} {lit(close)}")


def _gemma_code(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    call = _python_call_rules(rules, tools)
    return rules.add("body", f'"\\n"? {call} "\\n"? {lit(close)}')


def _harmony(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    return rules.add("body", _harmony_call_rules(rules, tools, lit))


def _mistral(rules: _Rules, tools: Sequence[ToolSpec], close: str, lit: Literal, specials) -> str:
    return _mistral_rules(rules, tools, lit, specials)


BODIES: dict[tuple[str, str], BodyBuilder] = {
    ("hermes", "<tool_call>"): _tagged_json,
    ("generic", "<tool_call>"): _tagged_json,
    ("gemma", "<tool_call>"): _tagged_json,
    ("gemma", "```tool_code"): _gemma_code,
    ("qwen3_coder", "<tool_call>"): _qwen3_wrapped,
    ("qwen3_coder", "<function="): _qwen3_unwrapped,
    ("glm", "<tool_call>"): _glm,
    ("llama3", "<|python_tag|>"): _bare_llama3,
    ("mistral", "[TOOL_CALLS]"): _mistral,
    ("harmony", " to=functions."): _harmony,
}


def constrained_markers(family: str, opens: Sequence[str]) -> list[int]:
    """Indexes of the family's markers that have a grammar."""
    return [i for i, open_ in enumerate(opens) if (family, open_) in BODIES]


def _forced_prefix(family: str, open_: str, lit: Literal) -> str:
    """What a forced call starts with: the open marker (written bare JSON for Llama 3, a channel for Harmony)."""
    if family == "llama3":
        return ""
    if family == "harmony":
        return f'{lit("<|channel|>")} "commentary" {quoted(open_)}'
    if family == "qwen3_coder" and open_ == "<function=":
        return quoted(open_)
    return lit(open_)


def _thinking_close(think_close: Optional[str], lit: Literal) -> str:
    return f'{lit(think_close)} "\\n"? "\\n"? ' if think_close else ""


def call_grammar(family: str, open_: str, close: str, tools: Sequence[ToolSpec], *,
                 specials: Mapping[str, int] | None = None, start: str = "after_open",
                 think_close: Optional[str] = None) -> Optional[str]:
    """The grammar of a call in `family`'s `open_`…`close` markup, or None if that marker has none.

    start="after_open": the text after the open marker (the model opened the call itself).
    start="forced": the whole reply — `think_close` first when the reply starts inside thinking, then
      the open marker, then the call.
    start="more": what may follow a finished call: blank space and further calls, nothing else (None
      for families whose calls run to the end of the reply).
    """
    builder = BODIES.get((family, open_))
    if builder is None or not tools or (start == "more" and (not close or family == "harmony")):
        return None
    specials = specials or {}
    lit = literal_for(specials)
    rules = _Rules()
    body = builder(rules, tools, close, lit, specials)
    if start == "forced":
        head = f"{_thinking_close(think_close, lit)}{_forced_prefix(family, open_, lit)} {body}".strip()
    elif start == "more":
        rules.lines.append("GAP: /[ \\t\\r\\n]{1,4}/")
        head = "GAP? (next_call GAP?)*"
        rules.add("next_call", f"{_forced_prefix(family, open_, lit)} {body}")
    else:
        head = body
    return f"start: {head}\n{rules.text()}\n"


def json_output_grammar(schema: dict[str, Any], *, lenient: bool = False, think_close: Optional[str] = None,
                        specials: Mapping[str, int] | None = None) -> str:
    """A reply that is one JSON value for `schema` (structured output), after closing thinking if needed."""
    lit = literal_for(specials or {})
    return f"start: {_thinking_close(think_close, lit)}output\noutput: {json_block(schema, lenient=lenient)}\n"
