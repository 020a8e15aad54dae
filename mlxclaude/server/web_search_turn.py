"""Web search within one reply (the `web_search_…` server tool). The model sees a `web_search` tool; when it
calls it, the server runs the search, the reply gets a `server_tool_use` and a `web_search_tool_result` block,
and the model goes on with the results in its conversation — in the same response, for any target that
yields reply events (a local model, an OpenAI-compatible engine). Without a [web_search] table, the reply
says so and how to set one up."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any, Awaitable, Callable, Optional

from mlxclaude.engine.backend import GenerationStats
from mlxclaude.engine.turn import TurnEnd, TurnItem
from mlxclaude.parsing.events import TextPiece, ToolCall
from mlxclaude.protocol.chat import ChatRequest, ToolChoice
from mlxclaude.protocol.server_tools import ServerToolUse, WebSearchResult, new_server_tool_id
from mlxclaude.protocol.usage import Usage
from mlxclaude.server.accounting import RequestAccount
from mlxclaude.server.event_turn import EventTurn, TurnItems
from mlxclaude.server.inflight import InFlight
from mlxclaude.server.state import ServerState
from mlxclaude.websearch.config import SETUP_HINT, WebSearchConfig
from mlxclaude.websearch.providers import SearchFailed, log_search, search

MAX_ROUNDS = 8  # searches the model may chain in one reply before the turn pauses (stop_reason pause_turn)
NOT_CONFIGURED = ("Web search is not configured on this mlxclaude server, so no search was run. To turn it on, "
                  + SETUP_HINT + ".")


def with_search_tool(chat: ChatRequest) -> ChatRequest:
    """`chat` with the web search the server runs offered to the model as a function tool."""
    assert chat.web_search is not None
    tool = {"type": "function", "function": {
        "name": chat.web_search.name,
        "description": "Search the web. Returns the most relevant pages: title, URL and a snippet of each.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "what to search for"}},
                       "required": ["query"]}}}
    return replace(chat, tools=[*chat.tools, tool])


class FixedItems:
    """Turn items known in advance (the reply that web search is not configured)."""

    interruptible = True

    def __init__(self, items: list[TurnItem]) -> None:
        self._items: deque[Any] = deque(items)

    def interrupt(self, marker: object) -> None:
        self._items.append(marker)

    def __aiter__(self) -> "FixedItems":
        return self

    async def __anext__(self) -> TurnItem:
        if not self._items:
            raise StopAsyncIteration
        return self._items.popleft()

    def take_ready(self) -> list[TurnItem]:
        return []

    async def aclose(self) -> None:
        self._items.clear()


def not_configured_items() -> FixedItems:
    stats = GenerationStats(prompt_tokens=0, finish_reason="stop")
    return FixedItems([TextPiece(NOT_CONFIGURED), TurnEnd("end_turn", None, Usage(), stats)])


Reopen = Callable[[ChatRequest], Awaitable[TurnItems]]


def offer_search(chat: ChatRequest, state: ServerState, account: RequestAccount,
                 record: InFlight) -> tuple[ChatRequest, Optional[EventTurn]]:
    """`chat` as the model sees it when the server runs its web search (the search as a function tool); or, with
    no provider configured, the turn that says so."""
    if chat.web_search is None:
        return chat, None
    if state.web_search is None:
        account.started(web_search="not configured")
        return chat, EventTurn(not_configured_items(), state=state, account=account, record=record,
                               start_usage=Usage())
    return with_search_tool(chat), None


def with_searches(chat: ChatRequest, first: TurnItems, reopen: Reopen, state: ServerState,
                  request_id: str) -> TurnItems:
    """The turn's items, searching when the model calls the web search (each round reopened by `reopen`)."""
    if chat.web_search is None or state.web_search is None:
        return first
    return SearchingItems(chat, first, reopen, state.web_search, request_id)


class SearchingItems:
    interruptible = False  # a search is awaited inside __anext__: pings must go on meanwhile

    def __init__(self, chat: ChatRequest, first: TurnItems, reopen: Reopen, config: WebSearchConfig,
                 request_id: str) -> None:
        assert chat.web_search is not None
        self._chat = chat
        self._tool = chat.web_search
        self._current = first
        self._reopen = reopen
        self._config = config
        self._request_id = request_id
        self._pending: deque[Any] = deque()
        self._round_text: list[str] = []
        self._round_results: list[tuple[ServerToolUse, WebSearchResult]] = []
        self._client_calls = 0
        self.searches = 0
        self._rounds = 1
        self._output_tokens = 0

    def __aiter__(self) -> "SearchingItems":
        return self

    def take_ready(self) -> list[TurnItem]:
        return []

    def interrupt(self, marker: object) -> None:
        raise NotImplementedError("a turn with web searches is not interruptible")

    async def aclose(self) -> None:
        await self._current.aclose()

    async def __anext__(self) -> Any:
        while True:
            if self._pending:
                return self._pending.popleft()
            item = await self._current.__anext__()
            if isinstance(item, ToolCall) and item.name == self._tool.name:
                await self._search(item)
                continue
            if isinstance(item, ToolCall):
                self._client_calls += 1
            elif isinstance(item, TextPiece):
                self._round_text.append(item.text)
            if not isinstance(item, TurnEnd):
                return item
            self._output_tokens += item.usage.output_tokens
            if self._round_results and not self._client_calls and self._rounds < MAX_ROUNDS:
                await self._next_round()
                continue
            return self._end(item)

    async def _search(self, call: ToolCall) -> None:
        query = str(call.arguments.get("query", "")).strip()
        use = ServerToolUse(new_server_tool_id(), self._tool.name, {"query": query})
        if self._tool.max_uses is not None and self.searches >= self._tool.max_uses:
            result = WebSearchResult(use.id, error_code="max_uses_exceeded")
        else:
            self.searches += 1
            try:
                hits = await search(self._config, query, allowed=self._tool.allowed_domains,
                                    blocked=self._tool.blocked_domains)
                result = WebSearchResult(use.id, hits=tuple(hits))
            except SearchFailed as failure:
                result = WebSearchResult(use.id, error_code=failure.code)
                log_search(self._request_id, self._config, query, 0, f"{failure.code}: {failure}")
            else:
                log_search(self._request_id, self._config, query, len(hits), None)
        self._round_results.append((use, result))
        self._pending.extend([use, result])

    async def _next_round(self) -> None:
        """The model goes on with this round's searches and their results in its conversation."""
        calls = [{"type": "function", "id": use.id, "function": {"name": use.name, "arguments": use.input}}
                 for use, _ in self._round_results]
        messages = [*self._chat.messages,
                    {"role": "assistant", "content": "".join(self._round_text), "tool_calls": calls},
                    *({"role": "tool", "tool_call_id": use.id, "name": use.name, "content": result.text()}
                      for use, result in self._round_results)]
        self._chat = replace(self._chat, messages=messages, assistant_prefill="", tool_choice=ToolChoice())
        self._round_text, self._round_results = [], []
        self._rounds += 1
        await self._current.aclose()
        self._current = await self._reopen(self._chat)

    def _end(self, end: TurnEnd) -> TurnEnd:
        stop_reason = end.stop_reason
        if self._round_results and not self._client_calls:
            stop_reason = "pause_turn"  # the searches went on past MAX_ROUNDS: the client may continue
        elif stop_reason == "tool_use" and not self._client_calls:
            stop_reason = "end_turn"
        usage = replace(end.usage, output_tokens=self._output_tokens, web_search_requests=self.searches)
        return replace(end, stop_reason=stop_reason, usage=usage)
