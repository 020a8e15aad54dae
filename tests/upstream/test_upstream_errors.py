"""error_from_openai and rejected_param: upstream errors → Anthropic ApiErrors, and parameters to drop."""

from __future__ import annotations

import pytest

from mlxclaude.protocol.errors import ApiError
from mlxclaude.upstream.openai_wire import error_from_openai, rejected_param


def openai_error(message, type_="BadRequestError", code=400, param=None):
    """vLLM's (and OpenAI's) error body."""
    return {"error": {"object": "error", "message": message, "type": type_, "param": param, "code": code}}


# --- context overflows -----------------------------------------------------------------------------------------

PROMPT_TOO_LONG = [
    # OpenAI / Azure
    ("OpenAI", 400, {"error": {"message": "This model's maximum context length is 8192 tokens. However, your messages "
                               "resulted in 9000 tokens. Please reduce the length of the messages.",
                               "type": "invalid_request_error", "param": "messages",
                               "code": "context_length_exceeded"}},
     "prompt is too long: 9000 tokens > 8192 maximum"),
    ("Azure", 400, {"error": {"message": "This model's maximum context length is 128000 tokens. However, your "
                              "messages resulted in 130,512 tokens (129,000 in the messages, 1,512 in the functions). "
                              "Please reduce the length of the messages or functions.",
                              "type": "invalid_request_error", "param": "messages",
                              "code": "context_length_exceeded"}},
     "prompt is too long: 130512 tokens > 128000 maximum"),
    # vLLM: the prompt alone
    ("vLLM", 400, openai_error("This model's maximum context length is 32768 tokens. However, your request has "
                               "40000 input tokens. Please reduce the length of the input messages."),
     "prompt is too long: 40000 tokens > 32768 maximum"),
    # older vLLM / OpenAI completions: the prompt alone is over
    ("vLLM old", 400, openai_error("This model's maximum context length is 4096 tokens. However, you requested "
                                   "5000 tokens (4500 in the messages, 500 in the completion). Please reduce the "
                                   "length of the messages or completion."),
     "prompt is too long: 4500 tokens > 4096 maximum"),
    # SGLang
    ("SGLang", 400, {"object": "error", "message": "The input (70000 tokens) is longer than the model's context "
                     "length (65536 tokens).", "type": "BadRequestError", "param": None, "code": 400},
     "prompt is too long: 70000 tokens > 65536 maximum"),
    # llama.cpp, new and old wordings
    ("llama.cpp", 400, {"error": {"code": 400, "message": "request (4476 tokens) exceeds the available context size "
                                  "(4096 tokens), try increasing it", "type": "exceed_context_size_error",
                                  "n_prompt_tokens": 4476, "n_ctx": 4096}},
     "prompt is too long: 4476 tokens > 4096 maximum"),
    ("llama.cpp old", 400, {"error": {"code": 400, "message": "the request exceeds the available context size, "
                                      "try increasing it", "type": "exceed_context_size_error",
                                      "n_prompt_tokens": 9000, "n_ctx": 8192}},
     "prompt is too long: 9000 tokens > 8192 maximum"),
    ("llama.cpp no numbers", 400, {"error": {"code": 400, "message": "the request exceeds the available context "
                                             "size, try increasing it", "type": "invalid_request_error"}},
     "prompt is too long: upstream: the request exceeds the available context size, try increasing it"),
    # TGI (422)
    ("TGI", 422, {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 5000 "
                  "`inputs` tokens and 100 `max_new_tokens`", "error_type": "validation"},
     "prompt is too long: 5000 tokens > 4096 maximum"),
    # another Anthropic-shaped server
    ("Anthropic-shaped", 400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}},
     "prompt is too long: 210000 tokens > 200000 maximum"),
    ("413 plain text", 413, "Too many tokens in the prompt",
     "prompt is too long: upstream: Too many tokens in the prompt"),
]


@pytest.mark.parametrize("status, body, message", [case[1:] for case in PROMPT_TOO_LONG],
                         ids=[case[0] for case in PROMPT_TOO_LONG])
def test_prompt_too_long_keeps_claude_codes_wording(status, body, message):
    error = error_from_openai(status, body)
    assert (error.status, error.error_type, error.message) == (400, "invalid_request_error", message)


INPUT_PLUS_MAX_TOKENS = [
    ("vLLM", openai_error("'max_tokens' or 'max_completion_tokens' is too large: 32000. This model's maximum context "
                          "length is 32768 tokens and your request has 2778 input tokens (32000 > 32768 - 2778). None"),
     (2778, 32000, 32768)),
    ("vLLM old", openai_error("This model's maximum context length is 4096 tokens. However, you requested 4147 tokens "
                              "(4097 in the messages, 50 in the completion)."), None),
    ("OpenAI split", openai_error("This model's maximum context length is 8192 tokens. However, you requested 9000 "
                                  "tokens (1000 in the messages, 8000 in the completion)."), (1000, 8000, 8192)),
    ("SGLang", openai_error("Requested token count exceeds the model's maximum context length of 32768 tokens. You "
                            "requested a total of 40000 tokens: 8000 tokens from the input messages and 32000 tokens "
                            "for the completion. Please reduce the number of tokens in the input messages or the "
                            "completion to fit within the limit."), (8000, 32000, 32768)),
    ("TGI", {"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 1000 "
             "`inputs` tokens and 4000 `max_new_tokens`"}, (1000, 4000, 4096)),
]


@pytest.mark.parametrize("body, numbers", [case[1:] for case in INPUT_PLUS_MAX_TOKENS],
                         ids=[case[0] for case in INPUT_PLUS_MAX_TOKENS])
def test_input_plus_max_tokens_keeps_claude_codes_wording(body, numbers):
    error = error_from_openai(400, body)
    if numbers is None:  # 4097 in the messages > 4096: the prompt alone is over
        assert error.message == "prompt is too long: 4097 tokens > 4096 maximum"
    else:
        assert error.message == ApiError.context_exceeded(*numbers).message
    assert error.status == 400


# --- every status ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, body, expected_status, error_type", [
    (400, openai_error("messages: Field required"), 400, "invalid_request_error"),
    (422, {"detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}]},
     400, "invalid_request_error"),
    (401, {"error": {"message": "Incorrect API key provided: sk-abc.", "type": "invalid_request_error",
                     "code": "invalid_api_key"}}, 401, "authentication_error"),
    (403, {"detail": "Forbidden"}, 403, "permission_error"),
    (404, openai_error("The model `qwen9` does not exist.", "NotFoundError", 404), 404, "not_found_error"),
    (408, "Request Timeout", 504, "timeout_error"),
    (413, "<html>413 Request Entity Too Large</html>", 413, "request_too_large"),
    (429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
     429, "rate_limit_error"),
    (500, openai_error("Internal error", "InternalServerError", 500), 500, "api_error"),
    (502, "<html><body>502 Bad Gateway</body></html>", 500, "api_error"),
    (503, {"message": "Service Unavailable"}, 529, "overloaded_error"),
    (504, None, 504, "timeout_error"),
    (529, {"error": {"message": "Overloaded"}}, 529, "overloaded_error"),
    (402, {"error": {"message": "Insufficient credits"}}, 402, "billing_error"),
])
def test_status_mapping(status, body, expected_status, error_type):
    error = error_from_openai(status, body)
    assert (error.status, error.error_type) == (expected_status, error_type)
    assert error.message.startswith("upstream: ")


def test_messages_are_kept():
    assert error_from_openai(400, openai_error("bad tool schema")).message == "upstream: bad tool schema"
    detail = {"detail": [{"loc": ["body", "max_tokens"], "msg": "Input should be a valid integer"}]}
    assert error_from_openai(422, detail).message == "upstream: body.max_tokens: Input should be a valid integer"
    assert error_from_openai(500, b"plain bytes").message == "upstream: plain bytes"
    assert error_from_openai(504, None).message == "upstream: HTTP 504"


def test_retry_after_is_kept():
    assert error_from_openai(429, {"error": {"message": "slow down"}}, retry_after="7").retry_after == "7"
    assert error_from_openai(503, "busy", retry_after="3").retry_after == "3"
    assert error_from_openai(500, "x", retry_after="3").retry_after is None


def test_a_context_word_outside_400_is_not_an_overflow():
    assert error_from_openai(500, "context length computation failed").error_type == "api_error"


# --- rejected_param --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, body, param", [
    (400, {"error": {"message": "Unrecognized request argument supplied: top_k", "type": "invalid_request_error",
                     "param": None, "code": None}}, "top_k"),
    (400, openai_error("unsupported parameter: 'top_k'"), "top_k"),
    (400, {"error": {"message": "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                     "type": "invalid_request_error", "param": "reasoning_effort", "code": "unsupported_parameter"}},
     "reasoning_effort"),
    (400, {"error": {"message": "Unsupported value: 'temperature' does not support 0.2 with this model. Only the "
                     "default (1) value is supported.", "type": "invalid_request_error", "param": "temperature",
                     "code": "unsupported_value"}}, "temperature"),
    (400, {"error": {"param": "top_k", "code": "unsupported_parameter"}}, "top_k"),
    (422, {"detail": [{"type": "extra_forbidden", "loc": ["body", "top_k"], "msg": "Extra inputs are not permitted",
                       "input": 20}]}, "top_k"),
    (400, openai_error("[{'type': 'extra_forbidden', 'loc': ('body', 'reasoning_effort'), 'msg': 'Extra inputs are "
                       "not permitted', 'input': 'low'}]"), "reasoning_effort"),
    (400, openai_error("top_k is not supported"), "top_k"),
    (400, openai_error("The parameter `parallel_tool_calls` is not supported by this backend"), "parallel_tool_calls"),
    (400, {"error": {"message": "Unknown parameter: 'stream_options.include_usage'.", "type": "invalid_request_error",
                     "param": "stream_options.include_usage", "code": "unknown_parameter"}}, "stream_options"),
    (400, {"error": {"message": "Invalid JSON payload received. Unknown name \"top_k\": Cannot find field.",
                     "code": 400}}, "top_k"),
    (400, {"error": {"message": "response_format.json_schema is not supported", "param": "response_format"}},
     "response_format"),
])
def test_rejected_param(status, body, param):
    assert rejected_param(status, body) == param


@pytest.mark.parametrize("status, body", [
    (400, openai_error("This model's maximum context length is 8192 tokens. However, your request has 9000 input "
                       "tokens.")),
    (400, openai_error("Unsupported parameter: 'model'")),                          # never model/messages/tools
    (400, {"error": {"message": "Unsupported value: 'messages[1].role' does not support 'system' with this model.",
                     "param": "messages[1].role", "code": "unsupported_value"}}),
    (400, openai_error("Unrecognized request argument supplied: tools")),
    (422, {"detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}]}),
    (500, openai_error("Unrecognized request argument supplied: top_k", code=500)),  # only 400/422
    (400, "bad request"),
    (400, None),
])
def test_nothing_to_drop(status, body):
    assert rejected_param(status, body) is None
