"""Errors from an OpenAI-compatible server → Anthropic-shaped ApiErrors, and which parameter it rejected. Pure.

A context overflow must reach Claude Code in the exact wordings it acts on (see ApiError):
- the prompt alone is too long → "prompt is too long: N tokens > M maximum" (it compacts);
- the prompt fits but max_tokens doesn't → "input length and `max_tokens` exceed context limit: …" (it
  retries with a smaller max_tokens).
The numbers are read from vLLM, SGLang, OpenAI/Azure, llama.cpp and TGI wordings; an overflow whose numbers
can't be read becomes "prompt is too long: upstream: <message>".
Other errors keep the upstream message, prefixed with "upstream: ".
"""

from __future__ import annotations

import re
from typing import Any

from mlxclaude.protocol.errors import ApiError

_MAX_MESSAGE_CHARS = 2000

_OVERFLOW_WORDS = (
    "maximum context length", "context_length_exceeded", "context length", "too many tokens",
    "prompt is too long", "exceeds the available context", "exceed_context_size", "context size",
    "context window",
)
_NUMBER = r"(\d[\d,]*)"
# (pattern, what its numbers are): "prompt"=(n_tokens, maximum); "split"=(context, input, completion)
_OVERFLOW_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # vLLM ≥ 0.9: the prompt fits, max_tokens doesn't.
    (re.compile(rf"is too large: {_NUMBER}\. This model's maximum context length is {_NUMBER} tokens "
                rf"and your request has {_NUMBER} input tokens", re.I), "vllm_max_tokens"),
    # OpenAI / older vLLM: "…However, you requested 4147 tokens (4097 in the messages, 50 in the completion)."
    (re.compile(rf"maximum context length is {_NUMBER} tokens\. However, you requested {_NUMBER} tokens "
                rf"\({_NUMBER} in the messages, {_NUMBER} in the completion\)", re.I), "openai_split"),
    # OpenAI / Azure / vLLM: "…However, your messages resulted in 9000 tokens" / "your request has 4176 input tokens"
    (re.compile(rf"maximum context length is {_NUMBER} tokens\.? However, your (?:messages resulted in|request has) "
                rf"{_NUMBER}", re.I), "max_then_prompt"),
    # SGLang
    (re.compile(rf"The input \({_NUMBER} tokens\) is longer than the model's context length \({_NUMBER} tokens\)",
                re.I), "prompt_then_max"),
    (re.compile(rf"maximum context length of {_NUMBER} tokens\. You requested a total of {_NUMBER} tokens: "
                rf"{_NUMBER} tokens from the input messages and {_NUMBER} tokens for the completion", re.I),
     "openai_split"),
    # llama.cpp: "request (4476 tokens) exceeds the available context size (4096 tokens)"
    (re.compile(rf"\({_NUMBER} tokens\) exceeds the available context size \({_NUMBER} tokens\)", re.I),
     "prompt_then_max"),
    # TGI: "`inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 500 `max_new_tokens`"
    (re.compile(rf"must be <= {_NUMBER}\. Given: {_NUMBER} `inputs` tokens and {_NUMBER} `max_new_tokens`", re.I),
     "tgi"),
    # already in Anthropic's wording (another Anthropic-compatible server)
    (re.compile(rf"prompt is too long: {_NUMBER} tokens > {_NUMBER} maximum", re.I), "prompt_then_max"),
]


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def error_message(body: object) -> str:
    """The human message of an error body: OpenAI/vLLM {"error": {...}}, {"message"}, FastAPI {"detail"}, text."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return error_message(error)
        for key in ("message", "error", "detail", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if key == "detail" and isinstance(value, list):
                return "; ".join(_detail_item(item) for item in value)
        return ""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    return body.strip() if isinstance(body, str) else ""


def _detail_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc") or ())
    return f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", ""))


def _error_fields(body: object) -> dict[str, Any]:
    if isinstance(body, dict):
        return body["error"] if isinstance(body.get("error"), dict) else body
    return {}


def is_context_overflow(message: str, body: object = None) -> bool:
    fields = _error_fields(body)
    if fields.get("code") == "context_length_exceeded" or fields.get("type") == "exceed_context_size_error":
        return True
    lowered = message.lower()
    return (any(word in lowered for word in _OVERFLOW_WORDS)
            or any(pattern.search(message) for pattern, _ in _OVERFLOW_PATTERNS))


def overflow_error(message: str, body: object = None) -> ApiError:
    """The Claude Code wording for a context overflow (numbers read from the message where it gives them)."""
    for pattern, kind in _OVERFLOW_PATTERNS:
        match = pattern.search(message)
        if match is None:
            continue
        numbers = [_n(group) for group in match.groups()]
        if kind == "vllm_max_tokens":
            completion, context, prompt = numbers
            return ApiError.context_exceeded(prompt, completion, context)
        if kind == "openai_split":
            context, _, prompt, completion = numbers
        elif kind == "tgi":
            context, prompt, completion = numbers
        elif kind == "max_then_prompt":
            context, prompt = numbers
            return ApiError.prompt_too_long(prompt, context)
        else:  # prompt_then_max
            prompt, context = numbers
            return ApiError.prompt_too_long(prompt, context)
        if prompt >= context:
            return ApiError.prompt_too_long(prompt, context)
        return ApiError.context_exceeded(prompt, completion, context)
    fields = _error_fields(body)  # llama.cpp puts the numbers beside its message
    prompt, context = fields.get("n_prompt_tokens"), fields.get("n_ctx")
    if isinstance(prompt, int) and isinstance(context, int):
        return ApiError.prompt_too_long(prompt, context)
    if message.lower().startswith("prompt is too long"):
        return ApiError.invalid_request(message)
    return ApiError.invalid_request(f"prompt is too long: upstream: {message}")


def error_from_openai(status: int, body: object, *, retry_after: str | None = None) -> ApiError:
    """The ApiError to answer with when the upstream server answered `status` with `body` (parsed JSON or text)."""
    message = error_message(body)[:_MAX_MESSAGE_CHARS] or f"HTTP {status}"
    if status in (400, 413, 422) and is_context_overflow(message, body):
        return overflow_error(message, body)
    text = f"upstream: {message}"
    if status in (400, 422):
        return ApiError.invalid_request(text)
    if status == 413:
        return ApiError.request_too_large(text)
    if status in (408, 504):
        return ApiError(504, "timeout_error", text)
    if status == 429:
        return ApiError(429, "rate_limit_error", text, retry_after=retry_after)
    if status in (503, 529):
        return ApiError(529, "overloaded_error", text, retry_after=retry_after)
    if status >= 500:
        return ApiError.api_error(text)
    if 400 <= status < 500:
        return ApiError.from_status(status, text)
    return ApiError.api_error(f"upstream: unexpected HTTP {status}: {message}")


def error_from_stream_chunk(chunk: dict[str, Any]) -> ApiError:
    """The ApiError for an error object sent inside a 200 reply (a stream chunk, or a body with "error")."""
    fields = _error_fields(chunk)
    code = fields.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if isinstance(code, int) and 400 <= code <= 599:
        status = code
    elif code in ("rate_limit_exceeded", "insufficient_quota") or fields.get("type") == "rate_limit_error":
        status = 429
    elif code == "context_length_exceeded" or fields.get("type") in (
            "invalid_request_error", "BadRequestError", "exceed_context_size_error"):
        status = 400
    else:
        status = 500
    return error_from_openai(status, chunk)


# --- rejected parameters -------------------------------------------------------------------------------------

# Top-level keys to_openai_chat may send that the request can do without (never model, messages, stream, tools).
DROPPABLE = frozenset({
    "max_tokens", "temperature", "top_p", "top_k", "stop", "tool_choice", "parallel_tool_calls", "user",
    "response_format", "reasoning_effort", "stream_options",
})
_NAME = r"[`'\"]?([A-Za-z_][A-Za-z0-9_.\[\]]*)[`'\"]?"
_REJECTION_PATTERNS = [
    re.compile(rf"Unrecognized request arguments? supplied: {_NAME}", re.I),
    re.compile(rf"Unsupported parameter: {_NAME}", re.I),
    re.compile(rf"Unknown parameter: {_NAME}", re.I),
    re.compile(rf"Unknown name {_NAME}", re.I),
    re.compile(rf"Unsupported value: {_NAME} does not support", re.I),
    re.compile(r"'loc': \('body', '([A-Za-z_][A-Za-z0-9_]*)'"),  # a pydantic error list as text
    re.compile(rf"(?:parameter|argument|field) {_NAME} is not (?:supported|permitted|allowed)", re.I),
    re.compile(rf"^{_NAME} is not (?:supported|permitted|allowed)", re.I),
    re.compile(rf"^{_NAME}: Extra inputs are not permitted", re.I),
]
_EXTRA_INPUT = ("extra inputs are not permitted", "extra_forbidden", "extra fields not permitted")


def _top_level(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    name = name.strip("`'\" ")
    if name.startswith("body."):
        name = name[len("body."):]
    top = re.split(r"[.\[]", name, maxsplit=1)[0]
    return top if top in DROPPABLE else None


def rejected_param(status: int, body: object) -> str | None:
    """For a 400/422 that says a parameter is not supported, the top-level key to leave out next time."""
    if status not in (400, 422):
        return None
    fields = _error_fields(body)
    message = error_message(body)
    lowered = message.lower()
    code = str(fields.get("code") or fields.get("type") or "").lower()
    param = fields.get("param")
    if param and ("unsupported" in code or "unknown" in code or "unrecognized" in code
                  or "not supported" in lowered or "unsupported" in lowered or "unrecognized" in lowered
                  or "unknown parameter" in lowered or any(word in lowered for word in _EXTRA_INPUT)):
        if (name := _top_level(param)) is not None:
            return name
    detail = body.get("detail") if isinstance(body, dict) else None
    for item in detail if isinstance(detail, list) else ():  # FastAPI/pydantic 422
        if isinstance(item, dict) and (item.get("type") == "extra_forbidden"
                                       or "extra" in str(item.get("msg", "")).lower()):
            loc = [str(part) for part in item.get("loc") or ()]
            if loc and loc[0] == "body":
                loc = loc[1:]
            if loc and (name := _top_level(loc[0])) is not None:
                return name
    for pattern in _REJECTION_PATTERNS:
        for match in pattern.finditer(message):
            if (name := _top_level(match.group(1))) is not None:
                return name
    return None
