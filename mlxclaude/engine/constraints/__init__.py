"""Constrained decoding: tool calls valid by construction, `tool_choice` honoured, JSON replies.

How it works (see plan.py for the per-request modes):
  * auto: the reply is free text; when the decoded text completes the family's open marker
    (`<tool_call>`, `[TOOL_CALLS]`, ` to=functions.` …), the rest of the call is constrained by a
    grammar (grammar.py): a tool name from the request, arguments valid for that tool's
    `input_schema`, then the close marker. After the call the watch resumes (parallel calls), or only
    end-of-reply is allowed (`disable_parallel_tool_use`).
  * any / tool: the reply *is* the call from its first token (the tool fixed for `tool`).
  * none: the open markers can never be completed (tools are still rendered, as Anthropic does).
  * output_config.format json_schema: the reply is one JSON value valid for the schema.
  XML families (qwen3_coder, glm) get a grammar of their function/parameter tags: string-typed values
  are free text up to the close tag, others JSON for their schema. Gemma's ```tool_code gets a
  keyword-call grammar. Schemas the engine can't compile are loosened (schemas.py, logged once).

The grammar engine is llguidance, picked by measurement on this project's CPU MLX machine with
SmolLM2-135M's 49k vocabulary, a union of Claude Code's Bash/Read/Edit/Write/Grep/Glob schemas and
five real calls (228 tokens):

                   tokenizer init   compile   mask/token (mean, p50)   mask → mlx logits
    llguidance          455 ms        6 ms         48 µs, 30 µs             ~90 µs
    xgrammar            180 ms       14 ms          7 µs,  4 µs             ~70 µs
    outlines-core       149 ms      604 ms         53 µs,  6 µs             ~110 µs

  * Per-token cost is dominated by applying the mask to the logits (the same for all three: a bit
    mask unpacked and `mx.where`), and all three are well under 1% of a decode step; xgrammar's
    40 µs lead over llguidance doesn't show in decode tok/s.
  * xgrammar imports torch at import time (matcher.py, testing.py) and its wheel requires torch,
    triton and transformers: a multi-GB CUDA torch on Linux, for an MLX server. outlines-core is
    regex-only (no context-free grammar: no XML-tag families, no "any text up to the close tag"),
    and compiles each tool set into a token index up front (0.6 s for six tools; seconds for Claude
    Code's ~25). llguidance is one 3 MB abi3 wheel with no dependencies, compiles lazily (6 ms),
    takes Lark with embedded `%json` schemas and `<[token id]>` special tokens, and has a `lenient`
    mode for unsupported schema keywords (Claude Code's TaskCreate uses `propertyNames`).

Cost while nothing is constrained: a request without tools or JSON schema gets no processor at all.
With tools, the processor never stalls mlx-lm's pipelined decoding while the text is free: it reads
each token one step late and covers the unknown newest token on the device (processor.py).
Measured decode tok/s (CPU, greedy, Claude Code's six tools): SmolLM2-135M 3.7 off / 3.6 watching
(auto) / 3.6 inside a forced call — within noise; the 1-layer tiny test model (2 ms a token, the
worst case) 460 / 432 / 299.

bench/tool_validity.py on SmolLM2 (36 prompts, Claude Code's Bash/Read/Edit/Write/Grep/Glob): with
tool_choice auto the model never attempts a call either way (0/36); with tool_choice any and
constraints on, 36/36 replies are calls, 61/61 tool_use blocks valid for their schema, 0 leaked markup.

Near max_tokens (the last third of the budget, 8 to 64 tokens) a call in progress is wrapped up:
among the tokens the grammar allows, those that end the reply, close the current string, or close
objects and arrays are preferred, so the call comes back complete (JSON families; an XML value can't
be steered this way). A call still cut off is repaired by the parser where its intent is clear, else
returned as text and logged (`tool_call_unparsed`) — never an error response.

Known limits: llguidance keeps a schema's property order (a model writing `description` before
`timeout` for Bash can no longer add `timeout`); a bare JSON call without markers (Hermes/Llama
"bare" replies) is not detected, so not constrained, under tool_choice auto.

Switch: `MlxBackend(constrain_tools=False)`, from the `tool_constraints` setting
(MLXCLAUDE_TOOL_CONSTRAINTS, default true); `MlxBackend.constraints.enabled` at run time.
"""

from mlxclaude.engine.constraints.model import ModelConstraints, constraint_processors, load_constraints
from mlxclaude.engine.constraints.plan import ConstraintPlan, plan_for

__all__ = ["ConstraintPlan", "ModelConstraints", "constraint_processors", "load_constraints", "plan_for"]
