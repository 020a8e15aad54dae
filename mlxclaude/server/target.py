"""The one contract behind every route. A Target — a local MLX model, an OpenAI-compatible or Azure engine,
an Anthropic-compatible one — opens a Turn for a parsed request; the server routes over targets without
asking which kind each is. A Turn is the reply under way: its Anthropic event stream or its whole message,
either one read once, and closed however the client goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Optional, Protocol

from mlxclaude.protocol.chat import ChatRequest
from mlxclaude.routing.config import BackendSpec
from mlxclaude.server.accounting import RequestAccount
from mlxclaude.server.inflight import InFlight


@dataclass(frozen=True)
class TurnRequest:
    request_id: str
    document: dict[str, Any]   # the body as the client sent it (after validation): remote engines read it
    chat: ChatRequest          # the same request, parsed and typed
    headers: dict[str, str]


class Turn(Protocol):
    record: InFlight  # what `mlxclaude status` shows of it while it runs

    def stream(self) -> AsyncIterator[bytes]:
        """The reply as Anthropic SSE bytes; ends with message_stop or an error event, never cut silently."""
        ...

    async def message(self) -> dict[str, Any]:
        """The whole reply as one Anthropic message (ApiError when it fails)."""
        ...

    async def aclose(self) -> None:
        """Stop generating (a local job, an upstream response), whether or not it was read."""
        ...


class Target(Protocol):
    spec: BackendSpec

    async def open(self, request: TurnRequest, account: RequestAccount) -> Turn:
        """A turn under way (its request_start logged), or TargetFailure before anything was sent."""
        ...

    async def count_tokens(self, request: TurnRequest) -> Optional[int]:
        """The prompt's tokens as this target counts them; None where it cannot (the server estimates)."""
        ...

    def sees_images(self) -> bool:
        """Whether images reach it as images (else a local model reads a placeholder)."""
        ...

    def facts(self) -> dict[str, Any]:
        """This backend's entry in GET /mlxclaude/status."""
        ...

    def up(self) -> bool:
        """`mlxclaude_backend_up`."""
        ...

    def in_flight(self) -> list[tuple[InFlight, bool]]:
        """The turns it holds, each with whether it is running (or still queued)."""
        ...

    async def close(self) -> None:
        """At shutdown."""
        ...
