"""PDFs as Claude Code's Read tool sends them (a base64 `document` block): their text, page by page, reaches a
local model's prompt and an OpenAI-compatible engine; one that cannot be read is a 400 saying why, never a
silently empty document; an Anthropic-compatible backend gets the block as it came."""

from __future__ import annotations

import base64
import json
import tomllib

import anthropic
import httpx
import pytest

from mlxclaude.protocol.request import to_chat_request
from mlxclaude.protocol.wire import parse_create_params
from mlxclaude.routing.config import parse_routing
from support.live_server import live_server
from support.pdf_files import pdf_block, text_pdf
from support.scripted_backend import ScriptedBackend
from support.upstreams import Answer, chat_completion, recording_upstream

MARKER = "PURPLE-ELEPHANT-42"


def ask(*blocks, model: str = "claude-sonnet-4-5") -> dict:
    return {"model": model, "max_tokens": 50,
            "messages": [{"role": "user", "content": [*blocks, {"type": "text", "text": "summarise it"}]}]}


def typed(body: dict):
    return to_chat_request(parse_create_params(body))


def test_a_pdf_becomes_its_text_with_page_markers():
    chat = typed(ask(pdf_block(f"first {MARKER}", "second page", title="report.pdf")))
    content = chat.messages[0]["content"]
    assert content.startswith("report.pdf\n[page 1 of 2]\nfirst " + MARKER)
    assert "[page 2 of 2]\nsecond page" in content and content.endswith("summarise it")
    assert chat.unreadable == ()


@pytest.mark.parametrize("source, why", [
    ({"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(b"%PDF-1.4 garbage").decode()},
     "the PDF cannot be read"),
    ({"type": "base64", "media_type": "application/pdf", "data": "not base64!"}, "not valid base64"),
    ({"type": "url", "url": "https://example.com/a.pdf"}, "a PDF by url cannot be fetched here"),
])
def test_a_pdf_that_cannot_be_read_is_named_with_the_reason(source, why):
    chat = typed(ask({"type": "document", "source": source}))
    assert len(chat.unreadable) == 1 and why in chat.unreadable[0]


@pytest.fixture(scope="module")
def local_server():
    backend = ScriptedBackend(lambda chat: "read it")
    with live_server(lambda: backend) as server:
        server.backend = backend
        yield server


def test_the_pdf_text_reaches_the_local_model_and_count_tokens_counts_it(local_server):
    client = anthropic.Anthropic(base_url=local_server.url, api_key="unused", max_retries=0)
    reply = client.messages.create(**ask(pdf_block(f"the word is {MARKER}")))
    assert reply.content[0].text == "read it"
    assert MARKER in json.dumps(local_server.backend.requests[-1].messages)
    body = ask(pdf_block(f"the word is {MARKER} " * 40))
    with_pdf = client.messages.count_tokens(model=body["model"], messages=body["messages"]).input_tokens
    plain = client.messages.count_tokens(model=body["model"], messages=ask()["messages"]).input_tokens
    assert with_pdf > plain + 40


def test_an_unreadable_pdf_is_a_400_with_the_reason(local_server):
    broken = {"type": "document", "title": "scan.pdf",
              "source": {"type": "base64", "media_type": "application/pdf",
                         "data": base64.b64encode(text_pdf("x")[:60]).decode()}}
    response = httpx.post(f"{local_server.url}/v1/messages", json=ask(broken))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith(
        "document 'scan.pdf': the PDF cannot be read")


def test_an_openai_engine_gets_the_text_and_an_anthropic_one_the_block():
    def script(request):
        if request.path.endswith("/chat/completions"):
            return Answer(body=chat_completion({"content": "openai read it"}))
        return Answer(body={"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                            "content": [{"type": "text", "text": "anthropic read it"}], "stop_reason": "end_turn",
                            "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}})

    with recording_upstream(script) as upstream:
        toml = (f'[backends.oa]\nkind = "openai"\nurl = "{upstream.url}/v1"\n'
                f'[backends.an]\nkind = "anthropic"\nurl = "{upstream.url}"\n'
                '[routes]\n"via-oa" = "oa"\n"via-an" = "an"\n"*" = "local"\n')
        routing = parse_routing(tomllib.loads(toml), local_model="/models/local")
        with live_server(lambda: ScriptedBackend(lambda chat: "local"), routing=routing) as server:
            client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
            assert client.messages.create(**ask(pdf_block(MARKER), model="via-oa")).content[0].text == \
                "openai read it"
            url_pdf = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
            assert client.messages.create(**ask(url_pdf, model="via-an")).content[0].text == "anthropic read it"
    openai_body, anthropic_body = [post.body for post in upstream.posts()]
    assert MARKER in openai_body["messages"][0]["content"]
    assert anthropic_body["messages"][0]["content"][0] == url_pdf  # passed on for the backend to read
