import pytest

from mlxclaude.protocol import errors
from mlxclaude.protocol.errors import ApiError, error_type_for_status


@pytest.mark.parametrize(
    ("error", "status", "error_type", "message"),
    [
        (errors.invalid_request("bad"), 400, "invalid_request_error", "bad"),
        (errors.authentication_failed(), 401, "authentication_error", "invalid x-api-key"),
        (errors.authentication_failed("no key"), 401, "authentication_error", "no key"),
        (errors.not_found("model: nope"), 404, "not_found_error", "model: nope"),
        (errors.request_too_large(), 413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
        (errors.api_error("boom"), 500, "api_error", "boom"),
        (errors.overloaded(), 529, "overloaded_error", "Overloaded"),
        (
            errors.prompt_too_long(219898, 200000),
            400,
            "invalid_request_error",
            "prompt is too long: 219898 tokens > 200000 maximum",
        ),
        (
            errors.context_exceeded(188240, 21333, 200000),
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, "
            "decrease input length or `max_tokens` and try again",
        ),
        (ApiError.from_status(403, "nope"), 403, "permission_error", "nope"),
    ],
)
def test_constructors(error: ApiError, status: int, error_type: str, message: str) -> None:
    assert (error.status, error.error_type, error.message) == (status, error_type, message)
    assert str(error) == message


@pytest.mark.parametrize(
    ("request_id", "expected"),
    [
        (
            "req_01",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_01"},
        ),
        (None, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ],
)
def test_to_body(request_id: str | None, expected: dict) -> None:
    assert errors.overloaded().to_body(request_id) == expected


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
        (502, "api_error"),
    ],
)
def test_error_type_for_status(status: int, error_type: str) -> None:
    assert error_type_for_status(status) == error_type


def test_api_error_is_catchable_as_exception() -> None:
    with pytest.raises(ApiError) as caught:
        raise errors.not_found("x")
    assert isinstance(caught.value, Exception)
    assert caught.value.status == 404
