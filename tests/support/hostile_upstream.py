"""A remote engine that misbehaves on purpose, on loopback: raw sockets, so a reply can end anywhere (mid-line,
without its terminator, without HTTP's own chunk terminator), trickle forever, or send one enormous line.
`plan(request)` chooses each reply. Tests only."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    content_type: str = "text/event-stream"
    pieces: list[bytes] = field(default_factory=list)   # written one send() each
    framing: str = "close"       # "close": the body ends at EOF; "chunked": HTTP chunks
    cut: bool = False            # chunked: close without the final 0-chunk
    trickle: Optional[bytes] = None  # after the pieces, this piece again and again until the client goes away
    trickle_every: float = 0.05
    trickle_limit: int = 2000    # bounded: it stops by itself


Plan = Callable[[Request], Reply]


def sse(*payloads: Any, event: Optional[str] = None) -> bytes:
    """SSE events from payloads (dicts JSON-encoded, strings as they are)."""
    out = b""
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        out += (f"event: {event}\n" if event else "").encode() + b"data: " + data.encode() + b"\n\n"
    return out


class HostileUpstream:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.requests: list[Request] = []
        self.active = 0          # connections whose reply is still being written
        self.disconnects = 0     # replies the client ended by going away
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> "HostileUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.active += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                request = read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                self._reply(conn, self.plan(request))
        except OSError:
            with self._lock:
                self.disconnects += 1
        finally:
            with self._lock:
                self.active -= 1

    def _reply(self, conn: socket.socket, reply: Reply) -> None:
        head = [f"HTTP/1.1 {reply.status} X", f"content-type: {reply.content_type}", "connection: close"]
        if reply.framing == "chunked":
            head.append("transfer-encoding: chunked")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())

        def send(piece: bytes) -> None:
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if reply.framing == "chunked" else piece)

        for piece in reply.pieces:
            send(piece)
        if reply.trickle is not None:
            for _ in range(reply.trickle_limit):
                time.sleep(reply.trickle_every)
                send(reply.trickle)
        if reply.framing == "chunked" and not reply.cut:
            conn.sendall(b"0\r\n\r\n")
        conn.shutdown(socket.SHUT_WR)


def read_request(conn: socket.socket) -> Optional[Request]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return Request(method, path, headers, parsed)


@contextmanager
def hostile_upstream(plan: Plan) -> Iterator[HostileUpstream]:
    server = HostileUpstream(plan).start()
    try:
        yield server
    finally:
        server.stop()


# --- the shapes of a reply, OpenAI- and Anthropic-like ---------------------------------------------------

def openai_chunk(delta: Optional[dict] = None, finish: Optional[str] = None, **extra: Any) -> dict:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice], **extra}


def openai_text_stream(*texts: str, finish: Optional[str] = "stop", done: bool = True) -> list[bytes]:
    pieces = [sse(openai_chunk({"content": text})) for text in texts]
    if finish:
        pieces.append(sse(openai_chunk(finish=finish)))
        pieces.append(sse({"id": "c1", "object": "chat.completion.chunk", "choices": [],
                           "usage": {"prompt_tokens": 5, "completion_tokens": len(texts), "total_tokens": 9}}))
    if done:
        pieces.append(sse("[DONE]"))
    return pieces


def anthropic_text_stream(*texts: str, stop: bool = True) -> list[bytes]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}
    pieces = [sse({"type": "message_start", "message": message}, event="message_start"),
              sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                  event="content_block_start")]
    pieces += [sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
                   event="content_block_delta") for text in texts]
    if stop:
        pieces += [sse({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
                   sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": len(texts)}}, event="message_delta"),
                   sse({"type": "message_stop"}, event="message_stop")]
    return pieces
