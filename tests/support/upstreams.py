"""Loopback HTTP servers standing in for remote engines (OpenAI-, Azure- or Anthropic-shaped): each records
every request and answers from a script. Tests only."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Optional, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    status: int = 200
    body: Union[dict, str, None] = None
    chunks: Optional[list[Union[dict, str]]] = None  # SSE `data:` payloads (dicts are JSON-encoded)
    headers: dict[str, str] = field(default_factory=dict)
    raw_sse: Optional[bytes] = None  # an SSE body sent as it is (Anthropic-shaped streams)


Script = Callable[[Recorded], Answer]


def chat_chunks(*deltas: dict, finish: str = "stop", usage: Optional[dict] = None) -> list[Union[dict, str]]:
    """An OpenAI stream: one chunk per delta, a finish chunk, a usage chunk with no choices, then [DONE]."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunks: list[Union[dict, str]] = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                                      for delta in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**base, "choices": [], "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5,
                                                              "total_tokens": 15}})
    chunks.append("[DONE]")
    return chunks


def chat_completion(message: dict, finish: str = "stop", usage: Optional[dict] = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}


class RecordingUpstream:
    def __init__(self, script: Script, port: int = 0) -> None:
        self.script = script
        self.requests: list[Recorded] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                self._answer(body)

            def _answer(self, body: Any) -> None:
                parts = urlsplit(self.path)
                recorded = Recorded(self.command, parts.path, parse_qs(parts.query),
                                    {key.lower(): value for key, value in self.headers.items()}, body)
                outer.requests.append(recorded)
                answer = outer.script(recorded)
                if answer.chunks is not None or answer.raw_sse is not None:
                    payload = answer.raw_sse if answer.raw_sse is not None else b"".join(
                        b"data: " + (chunk if isinstance(chunk, str) else json.dumps(chunk)).encode() + b"\n\n"
                        for chunk in answer.chunks or [])
                    content_type = "text/event-stream"
                else:
                    text = answer.body if isinstance(answer.body, str) else json.dumps(answer.body or {})
                    payload = text.encode()
                    content_type = "application/json"
                self.send_response(answer.status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "RecordingUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def posts(self) -> list[Recorded]:
        return [request for request in self.requests if request.method == "POST"]


@contextmanager
def recording_upstream(script: Script) -> Iterator[RecordingUpstream]:
    server = RecordingUpstream(script).start()
    try:
        yield server
    finally:
        server.stop()
