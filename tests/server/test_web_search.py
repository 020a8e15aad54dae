"""The `web_search` server tool run by the server: against a SearXNG-shaped and a Brave-shaped loopback server
that record the queries, on the local (scripted) model and on an OpenAI-compatible engine; max_uses, domain
filters, provider errors and no provider at all; the official SDK parses every block."""

from __future__ import annotations

import json
import tomllib

import anthropic
import pytest

from mlxclaude.routing.config import parse_routing
from mlxclaude.websearch.config import parse_web_search
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend
from support.upstreams import Answer, chat_completion, recording_upstream

HITS = [{"url": "https://ml-explore.github.io/mlx/", "title": "MLX docs", "content": "MLX is an array framework"},
        {"url": "https://spam.example/mlx", "title": "Spam", "content": "buy now"}]
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search"}


def searxng(request):
    if request.path == "/search":
        return Answer(body={"results": HITS})
    return Answer(status=404, body={})


def searching_model(chat):
    """Searches until it has results (a different query each time), then reports what it read."""
    results = [message["content"] for message in chat.messages if message["role"] == "tool"]
    if results and ("max_uses_exceeded" in results[-1] or "failed" in results[-1] or len(results) > 1):
        return "Done: " + results[-1].splitlines()[0]
    if results:
        return "Found: " + results[-1].splitlines()[0]
    return '<tool_call>{"name": "web_search", "arguments": {"query": "mlx docs"}}</tool_call>'


def serve(model=searching_model, *, search_url: str | None = None, provider: str = "searxng", routing=None):
    config = None
    if search_url is not None:
        table = {"provider": provider, "url": search_url, **({"api_key_env": "SEARCH_KEY"} if provider == "brave" else {})}
        config = parse_web_search({"web_search": table})
    return live_server(lambda: ScriptedBackend(model), web_search=config, routing=routing)


def ask(client, *, stream: bool = False, tool=WEB_SEARCH, model: str = "claude-haiku-4-5"):
    body = dict(model=model, max_tokens=200, tools=[tool],
                messages=[{"role": "user", "content": "Perform a web search for the query: mlx docs"}])
    if stream:
        with client.messages.stream(**body) as events:
            return events.get_final_message()
    return client.messages.create(**body)


@pytest.mark.parametrize("stream", [False, True])
def test_a_search_the_model_asks_for_runs_and_the_model_goes_on_with_the_results(stream):
    with recording_upstream(searxng) as upstream, serve(search_url=upstream.url) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        reply = ask(client, stream=stream)
    assert [block.type for block in reply.content] == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = reply.content
    assert use.name == "web_search" and use.input == {"query": "mlx docs"} and use.id.startswith("srvtoolu_")
    assert result.tool_use_id == use.id and [hit.url for hit in result.content] == [h["url"] for h in HITS]
    assert text.text == "Found: [1] MLX docs"
    assert reply.usage.server_tool_use.web_search_requests == 1 and reply.stop_reason == "end_turn"
    (searched,) = upstream.requests
    assert searched.query == {"q": ["mlx docs"], "format": ["json"]}


def test_domain_filters_and_max_uses():
    tool = {**WEB_SEARCH, "max_uses": 1, "blocked_domains": ["spam.example"]}

    def twice(chat):  # searches again after its first results
        results = [message["content"] for message in chat.messages if message["role"] == "tool"]
        if len(results) == 1:
            return '<tool_call>{"name": "web_search", "arguments": {"query": "more"}}</tool_call>'
        return searching_model(chat)

    with recording_upstream(searxng) as upstream, serve(twice, search_url=upstream.url) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        reply = ask(client, tool=tool)
    kinds = [block.type for block in reply.content]
    assert kinds == ["server_tool_use", "web_search_tool_result", "server_tool_use", "web_search_tool_result", "text"]
    assert [hit.url for hit in reply.content[1].content] == [HITS[0]["url"]]  # spam.example filtered out
    assert reply.content[3].content.error_code == "max_uses_exceeded"
    assert len(upstream.requests) == 1 and reply.usage.server_tool_use.web_search_requests == 1
    assert reply.content[4].text.startswith("Done: The web search failed: max_uses_exceeded")


def test_a_provider_failure_is_an_error_block_and_the_reply_carries_on():
    with recording_upstream(lambda request: Answer(status=429, body={})) as upstream, \
            serve(search_url=upstream.url) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        reply = ask(client)
    assert reply.content[1].content.error_code == "too_many_requests"
    assert reply.content[-1].text == "Done: The web search failed: too_many_requests."


def test_brave_gets_its_key_header_and_the_key_never_shows(monkeypatch, capfd):
    monkeypatch.setenv("SEARCH_KEY", "brave-secret-key-123")

    def brave(request):
        return Answer(body={"web": {"results": [{"url": HITS[0]["url"], "title": "MLX docs", "description": "d"}]}})

    with recording_upstream(brave) as upstream, serve(search_url=upstream.url, provider="brave") as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        reply = ask(client)
    (searched,) = upstream.requests
    assert searched.path == "/res/v1/web/search" and searched.headers["x-subscription-token"] == "brave-secret-key-123"
    assert reply.content[-1].text == "Found: [1] MLX docs"
    assert "brave-secret-key-123" not in capfd.readouterr().err


def test_without_a_provider_the_reply_says_how_to_configure_one():
    with serve() as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        reply = ask(client)
    assert [block.type for block in reply.content] == ["text"]
    assert "Web search is not configured" in reply.content[0].text and "[web_search]" in reply.content[0].text


def test_the_same_on_an_openai_compatible_engine():
    """…and the turn is in flight (GET /mlxclaude/status) through every round, then no longer."""
    import httpx

    seen_in_flight = []

    def engine_and_search(request):
        if request.path == "/search":
            return searxng(request)
        messages = request.body["messages"]
        if messages[-1]["role"] == "tool":
            seen_in_flight.append(httpx.get(f"{server.url}/mlxclaude/status", timeout=30).json()["in_flight"])
            return Answer(body=chat_completion({"content": "engine read: " + messages[-1]["content"].splitlines()[0]}))
        assert any(tool["function"]["name"] == "web_search" for tool in request.body["tools"])
        call = {"id": "c1", "type": "function", "function": {"name": "web_search",
                                                             "arguments": json.dumps({"query": "mlx docs"})}}
        return Answer(body=chat_completion({"content": None, "tool_calls": [call]}, finish="tool_calls"))

    with recording_upstream(engine_and_search) as upstream:
        toml = f'[backends.gpu]\nkind = "openai"\nurl = "{upstream.url}/v1"\n[routes]\n"*" = "gpu"\n'
        routing = parse_routing(tomllib.loads(toml), local_model="/models/local")
        with serve(search_url=upstream.url, routing=routing) as server:
            client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
            reply = ask(client, stream=True)
            after = httpx.get(f"{server.url}/mlxclaude/status", timeout=30).json()["in_flight"]
    assert [len(listed) for listed in seen_in_flight] == [1] and after == []
    assert [block.type for block in reply.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert reply.content[-1].text == "engine read: [1] MLX docs"
    assert reply.usage.server_tool_use.web_search_requests == 1


def test_searches_of_earlier_turns_read_as_text_in_the_next_request():
    from mlxclaude.protocol.request import to_chat_request
    from mlxclaude.protocol.wire import parse_create_params

    history = [
        {"role": "user", "content": "search mlx"},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "mlx docs"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [
                {"type": "web_search_result", "url": HITS[0]["url"], "title": "MLX docs", "encrypted_content": "x"}]},
            {"type": "text", "text": "MLX is an array framework."}]},
        {"role": "user", "content": "thanks"},
    ]
    chat = to_chat_request(parse_create_params({"model": "m", "max_tokens": 10, "messages": history}))
    assert chat.messages[1]["content"] == ("[searched the web for: mlx docs]\n\nWeb search results:\n"
                                           f"- MLX docs ({HITS[0]['url']})\n\nMLX is an array framework.")
