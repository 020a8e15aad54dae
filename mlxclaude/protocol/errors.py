"""Anthropic-shaped API errors: an exception carrying status, `error.type` and message, and its JSON body."""

from __future__ import annotations

from typing import Any

from mlxclaude.redaction import redact

_ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """The Anthropic `error.type` for an HTTP status; unlisted 4xx are invalid requests, anything else an api_error."""
    if status in _ERROR_TYPE_BY_STATUS:
        return _ERROR_TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str, *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        # A `retry-after` value to send back (e.g. passed on from an upstream 429); None: the server's default.
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.error_type!r}, {self.message!r})"

    def to_body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "error": {"type": self.error_type, "message": redact(self.message)}}
        if request_id is not None:
            body["request_id"] = request_id
        return body

    @classmethod
    def from_status(cls, status: int, message: str) -> ApiError:
        return cls(status, error_type_for_status(status), message)

    @classmethod
    def invalid_request(cls, message: str) -> ApiError:
        return cls(400, "invalid_request_error", message)

    @classmethod
    def authentication_failed(cls, message: str = "invalid x-api-key") -> ApiError:
        return cls(401, "authentication_error", message)

    @classmethod
    def not_found(cls, message: str) -> ApiError:
        return cls(404, "not_found_error", message)

    @classmethod
    def request_too_large(cls, message: str = "Request exceeds the maximum allowed number of bytes.") -> ApiError:
        return cls(413, "request_too_large", message)

    @classmethod
    def api_error(cls, message: str = "Internal server error") -> ApiError:
        return cls(500, "api_error", message)

    @classmethod
    def overloaded(cls, message: str = "Overloaded") -> ApiError:
        return cls(529, "overloaded_error", message)

    @classmethod
    def prompt_too_long(cls, n_tokens: int, maximum: int) -> ApiError:
        # Claude Code matches this wording to trigger auto-compaction.
        return cls.invalid_request(f"prompt is too long: {n_tokens} tokens > {maximum} maximum")

    @classmethod
    def context_exceeded(cls, input_tokens: int, max_tokens: int, context: int) -> ApiError:
        # Claude Code matches this wording and retries with a smaller max_tokens.
        return cls.invalid_request(
            f"input length and `max_tokens` exceed context limit: {input_tokens} + {max_tokens} > {context}, "
            "decrease input length or `max_tokens` and try again"
        )


invalid_request = ApiError.invalid_request
authentication_failed = ApiError.authentication_failed
not_found = ApiError.not_found
request_too_large = ApiError.request_too_large
api_error = ApiError.api_error
overloaded = ApiError.overloaded
prompt_too_long = ApiError.prompt_too_long
context_exceeded = ApiError.context_exceeded
