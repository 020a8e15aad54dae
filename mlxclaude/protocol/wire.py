"""Tolerant pydantic models of the Anthropic Messages request body, named after the SDK's `*Param` types.

Unknown fields are ignored everywhere, content blocks of an unknown `type` become `UnknownBlockParam`, and
validation errors become a 400 `ApiError` whose message reads like the real API's:
`messages.0.content: Field required`. The fields the API constrains to a set of values are checked against
it as the API does (`thinking.display`, `output_config.effort`, `cache_control`, `service_tier`), though
most change nothing here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictStr, Tag, ValidationError, model_validator

from mlxclaude.protocol import limits
from mlxclaude.protocol.errors import ApiError


class CacheControlParam(BaseModel):
    """A prompt-caching breakpoint: accepted where the API accepts it, checked like the API, otherwise unused
    (the prompt cache here is automatic)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    cache_control: CacheControlParam | None = None


# --- content blocks -------------------------------------------------------------------------------------


class TextBlockParam(WireModel):
    type: Literal["text"] = "text"
    text: str
    citations: Any = None


class ImageBlockParam(WireModel):
    type: Literal["image"] = "image"
    source: Any = None


class DocumentSourceParam(WireModel):
    """One of base64/url (PDF, not readable here), text (`data`) or content (`content`)."""

    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    content: StrOrContentBlocks | None = None


class DocumentBlockParam(WireModel):
    type: Literal["document"] = "document"
    source: DocumentSourceParam
    title: str | None = None
    context: str | None = None


class SearchResultBlockParam(WireModel):
    type: Literal["search_result"] = "search_result"
    source: str = ""
    title: str = ""
    content: list[TextBlockParam] = Field(default_factory=list)


class ToolUseBlockParam(WireModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlockParam(WireModel):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: StrOrContentBlocks | None = None
    is_error: bool | None = None


class ThinkingBlockParam(WireModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str | None = None


class RedactedThinkingBlockParam(WireModel):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: StrictStr


class MidConversationSystemBlockParam(WireModel):
    """A system section nested in a message (`mid-conversation-system` beta); its text blocks matter."""

    type: Literal["mid_conv_system"] = "mid_conv_system"
    content: StrOrContentBlocks | None = None


class UnknownBlockParam(BaseModel):
    """Any block whose `type` this server doesn't know (server-tool results, tool_addition, ...). Never fails."""

    model_config = ConfigDict(extra="allow")
    type: str


_KNOWN_BLOCK_TYPES = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "mid_conv_system",
    }
)
_UNKNOWN_TAG = "unknown"


def _block_tag(value: Any) -> str | None:
    block_type = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(block_type, str):
        return None
    return block_type if block_type in _KNOWN_BLOCK_TYPES else _UNKNOWN_TAG


ContentBlockParam = Annotated[
    Union[
        Annotated[TextBlockParam, Tag("text")],
        Annotated[ImageBlockParam, Tag("image")],
        Annotated[DocumentBlockParam, Tag("document")],
        Annotated[SearchResultBlockParam, Tag("search_result")],
        Annotated[ToolUseBlockParam, Tag("tool_use")],
        Annotated[ToolResultBlockParam, Tag("tool_result")],
        Annotated[ThinkingBlockParam, Tag("thinking")],
        Annotated[RedactedThinkingBlockParam, Tag("redacted_thinking")],
        Annotated[MidConversationSystemBlockParam, Tag("mid_conv_system")],
        Annotated[UnknownBlockParam, Tag(_UNKNOWN_TAG)],
    ],
    Discriminator(
        _block_tag,
        custom_error_type="invalid_content_block",
        custom_error_message="Input should be a content block object with a string `type`",
    ),
]

# `str | list[...]` as a tagged union, so a bad list reports only the list's errors (not also "not a string").
# The tags "str" and "list" are dropped from error locations by `_format_location`.
_STR_TAG, _LIST_TAG = "str", "list"


def _str_or_list_tag(value: Any) -> str:
    return _STR_TAG if isinstance(value, str) else _LIST_TAG


StrOrContentBlocks = Annotated[
    Union[Annotated[str, Tag(_STR_TAG)], Annotated[list[ContentBlockParam], Tag(_LIST_TAG)]],
    Discriminator(_str_or_list_tag),
]
StrOrTextBlocks = Annotated[
    Union[Annotated[str, Tag(_STR_TAG)], Annotated[list[TextBlockParam], Tag(_LIST_TAG)]],
    Discriminator(_str_or_list_tag),
]


class MessageParam(WireModel):
    role: Literal["user", "assistant", "system"]
    content: StrOrContentBlocks


# --- tools and options ----------------------------------------------------------------------------------


class ToolParam(WireModel):
    """A custom tool (`type` absent or "custom") or a server tool with a versioned `type` like web_search_20250305."""

    name: str
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    max_uses: int | None = Field(default=None, strict=True, ge=1)  # web_search_…
    allowed_domains: list[StrictStr] | None = None
    blocked_domains: list[StrictStr] | None = None

    @property
    def is_custom(self) -> bool:
        return self.type in (None, "custom")

    @property
    def is_web_search(self) -> bool:
        return (self.type or "").startswith("web_search_")


class ToolChoiceParam(WireModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _tool_needs_name(self) -> ToolChoiceParam:
        if self.type == "tool" and not self.name:
            raise ValueError("`name` is required when tool_choice.type is 'tool'")
        return self


class ThinkingConfigParam(WireModel):
    """`enabled` (+ budget_tokens), `disabled` or `adaptive`; an unrecognised type is kept and treated as adaptive."""

    type: str
    budget_tokens: int | None = Field(default=None, strict=True)
    display: Literal["summarized", "omitted"] | None = None


class JsonOutputFormatParam(WireModel):
    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")


class OutputConfigParam(WireModel):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: JsonOutputFormatParam | None = None


class MetadataParam(WireModel):
    user_id: StrictStr | None = None  # opaque; Claude Code sends a JSON string


# --- request bodies -------------------------------------------------------------------------------------


class _PromptParams(WireModel):
    """Everything that shapes the prompt; shared by /v1/messages and /v1/messages/count_tokens."""

    model: str
    messages: list[MessageParam] = Field(max_length=limits.MAX_MESSAGES)
    system: StrOrTextBlocks | None = None
    tools: list[ToolParam] | None = Field(default=None, max_length=limits.MAX_TOOLS)
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingConfigParam | None = None
    output_config: OutputConfigParam | None = None
    output_format: JsonOutputFormatParam | None = None  # deprecated beta alias of output_config.format
    context_management: Any = None
    mcp_servers: Any = None

    @property
    def json_output_format(self) -> JsonOutputFormatParam | None:
        if self.output_config is not None and self.output_config.format is not None:
            return self.output_config.format
        return self.output_format


class MessageCountTokensParams(_PromptParams):
    """Body of POST /v1/messages/count_tokens; generation fields such as max_tokens/stream are ignored if sent."""


StopSequence = Annotated[str, Field(strict=True, max_length=limits.MAX_STOP_SEQUENCE_CHARS)]


class MessageCreateParams(_PromptParams):
    """Body of POST /v1/messages."""

    max_tokens: int = Field(strict=True, ge=1)
    stop_sequences: list[StopSequence] | None = Field(default=None, max_length=limits.MAX_STOP_SEQUENCES)
    stream: bool | None = Field(default=None, strict=True)
    temperature: float | None = Field(default=None, strict=True, ge=0, le=1)
    top_p: float | None = Field(default=None, strict=True, ge=0, le=1)
    top_k: int | None = Field(default=None, strict=True, ge=0)
    metadata: MetadataParam | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    container: StrictStr | dict[str, Any] | None = None
    inference_geo: Any = None
    speed: Any = None


for _model in (DocumentSourceParam, ToolResultBlockParam, MidConversationSystemBlockParam):
    _model.model_rebuild()


# --- parsing --------------------------------------------------------------------------------------------


def _format_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in (_STR_TAG, _LIST_TAG))


def _readable(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    location = _format_location(first["loc"])
    return f"{location}: {first['msg']}" if location else first["msg"]


def parse_create_params(data: Any) -> MessageCreateParams:
    """Validate a /v1/messages body; raises a 400 ApiError with a readable message on failure."""
    try:
        params = MessageCreateParams.model_validate(data)
    except ValidationError as error:
        raise ApiError.invalid_request(_readable(error)) from error
    check_consistency(params)
    return params


def parse_count_tokens_params(data: Any) -> MessageCountTokensParams:
    """Validate a /v1/messages/count_tokens body; raises a 400 ApiError with a readable message on failure."""
    try:
        params = MessageCountTokensParams.model_validate(data)
    except ValidationError as error:
        raise ApiError.invalid_request(_readable(error)) from error
    check_consistency(params)
    return params


# --- rules across fields (the real API's wording where known) ---------------------------------------------

_TOOL_NAME = re.compile(limits.TOOL_NAME_PATTERN)


def check_consistency(params: _PromptParams) -> None:
    """What Anthropic refuses with a 400 although every field is well-formed on its own."""
    if not params.messages:
        raise ApiError.invalid_request("messages: at least one message is required")
    names = _check_tool_names(params.tools or [])
    _check_tool_choice(params.tool_choice, names)
    _check_thinking(params.thinking, getattr(params, "max_tokens", None))


def _check_tool_names(tools: list[ToolParam]) -> set[str]:
    names: set[str] = set()
    for index, tool in enumerate(tools):
        if tool.is_custom and not _TOOL_NAME.match(tool.name):
            raise ApiError.invalid_request(
                f"tools.{index}.custom.name: String should match pattern '{limits.TOOL_NAME_PATTERN}'")
        if tool.name in names:
            raise ApiError.invalid_request(f"tools: Tool names must be unique ({tool.name!r} appears twice)")
        names.add(tool.name)
    return names


def _check_tool_choice(choice: ToolChoiceParam | None, names: set[str]) -> None:
    if choice is None or choice.type in ("auto", "none"):
        return
    if not names:
        raise ApiError.invalid_request(f"tool_choice: `{choice.type}` may only be specified while providing tools")
    if choice.type == "tool" and choice.name not in names:
        raise ApiError.invalid_request(f"tool_choice.name: tool {choice.name!r} is not among the request's tools")


def _check_thinking(thinking: ThinkingConfigParam | None, max_tokens: int | None) -> None:
    if thinking is None or thinking.type != "enabled":
        return
    budget = thinking.budget_tokens
    if budget is None:
        raise ApiError.invalid_request("thinking.enabled.budget_tokens: Field required")
    if budget < limits.MIN_THINKING_BUDGET:
        raise ApiError.invalid_request(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {limits.MIN_THINKING_BUDGET}")
    if max_tokens is not None and max_tokens <= budget:
        raise ApiError.invalid_request("`max_tokens` must be greater than `thinking.budget_tokens`")
