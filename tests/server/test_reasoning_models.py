"""OpenAI and Azure reasoning models (o-series, GPT-5) take `max_completion_tokens`, not `max_tokens`, and only
their default temperature: known families get it from the start, others learn it from the first rejection
(Azure's wording), as LiteLLM maps them."""

from __future__ import annotations

import tomllib

import anthropic

from mlxclaude.routing.config import parse_routing
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend
from support.upstreams import Answer, chat_completion, recording_upstream

AZURE_REJECTION = {"error": {
    "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
               "Use 'max_completion_tokens' instead.",
    "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}


def azure(url: str, deployment: str) -> str:
    return (f'[backends.azure]\nkind = "azure"\nurl = "{url}"\ndeployment = "{deployment}"\n'
            f'api_version = "2025-01-01-preview"\n[routes]\n"*" = "azure"\n')


def serve(toml: str):
    return live_server(lambda: ScriptedBackend(lambda chat: "local"),
                       routing=parse_routing(tomllib.loads(toml), local_model="/models/local"))


def ask(client, **extra):
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=300,
                                  messages=[{"role": "user", "content": "hi"}], **extra)


def test_a_deployment_that_rejects_max_tokens_gets_max_completion_tokens_on_the_retry_and_after():
    def script(request):
        if "max_tokens" in request.body:
            return Answer(status=400, body=AZURE_REJECTION)
        return Answer(body=chat_completion({"content": "reasoned"}))

    with recording_upstream(script) as upstream, serve(azure(upstream.url, "my-deployment")) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        assert ask(client).content[0].text == "reasoned"
        assert ask(client).content[0].text == "reasoned"
    posts = upstream.posts()
    assert [("max_tokens" in post.body, post.body.get("max_completion_tokens")) for post in posts] == \
        [(True, None), (False, 300), (False, 300)]  # renamed, not dropped: the reply keeps its limit


def test_a_known_reasoning_family_gets_max_completion_tokens_and_its_own_temperature_at_once():
    with recording_upstream(lambda request: Answer(body=chat_completion({"content": "ok"}))) as upstream, \
            serve(azure(upstream.url, "gpt-5-mini")) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        ask(client, extra_body={"temperature": 0.2, "top_p": 0.9})
    (post,) = upstream.posts()
    assert post.body["max_completion_tokens"] == 300
    assert "max_tokens" not in post.body and "temperature" not in post.body and "top_p" not in post.body


def test_other_models_keep_max_tokens_and_temperature():
    with recording_upstream(lambda request: Answer(body=chat_completion({"content": "ok"}))) as upstream, \
            serve(azure(upstream.url, "gpt-4o")) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
        ask(client, extra_body={"temperature": 0.2, "top_p": 0.9})
    (post,) = upstream.posts()
    assert post.body["max_tokens"] == 300 and post.body["temperature"] == 0.2
