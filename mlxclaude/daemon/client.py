"""Three small calls to a running daemon, with short timeouts. Connection failures return None.

The daemon speaks plain HTTP (on loopback unless a token guards it), so these calls are one HTTP/1.0
request each over a socket: no httpx and no ssl to import (`mlxclaude status` is the command scripts
poll, and it starts as fast as Typer), and no proxy variable can capture them.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Optional
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import socket

CONNECT_TIMEOUT = 1.0
TIMEOUT = 3.0
MAX_RESPONSE_BYTES = 4 * 2**20  # the admin replies are a few hundred bytes


class Response(NamedTuple):
    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        return json.loads(self.body)


def request(method: str, url: str, path: str, *, token: Optional[str] = None,
            timeout: float = TIMEOUT) -> Optional[Response]:
    """One request to the daemon at `url` (http://host:port); None when it cannot be reached or its
    reply is not HTTP. `timeout` bounds the whole exchange; connecting gets at most CONNECT_TIMEOUT."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    host = parts.netloc.rpartition("@")[2]
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}", "Accept: application/json", "Content-Length: 0"]
    if token:
        lines.append(f"x-api-key: {token}")
    message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    import socket  # here: the status of a daemon that is not running needs no socket

    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((parts.hostname, port), timeout=min(CONNECT_TIMEOUT, timeout)) as sock:
            sock.sendall(message)
            raw = _read_all(sock, deadline)
    except (OSError, UnicodeError):
        return None
    return _parse(raw)


def health(url: str, *, timeout: float = TIMEOUT) -> Optional[dict[str, Any]]:
    """/health's body plus `http_status` ("ok" is 200; "loading" and "failed" are 503); None if unreachable."""
    response = request("GET", url, "/health", timeout=timeout)
    if response is None:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    body.setdefault("status", "ok" if response.status == 200 else "unknown")
    body["http_status"] = response.status
    return body


def status(url: str, token: Optional[str] = None, *, timeout: float = TIMEOUT) -> Optional[dict[str, Any]]:
    """GET /mlxclaude/status; None when unreachable or refused."""
    response = request("GET", url, "/mlxclaude/status", token=token, timeout=timeout)
    if response is None or response.status != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def shutdown(url: str, token: Optional[str] = None, *, timeout: float = TIMEOUT) -> bool:
    """POST /mlxclaude/shutdown; True when the daemon accepted it."""
    response = request("POST", url, "/mlxclaude/shutdown", token=token, timeout=timeout)
    return response is not None and response.status in (200, 202)


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    """Everything until the server closes the connection (an HTTP/1.0 reply ends so)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the daemon did not answer in time")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise OSError("the daemon's reply is too large")


def _parse(raw: bytes) -> Optional[Response]:
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        return None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        return None
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
        if body is None:
            return None
    elif headers.get("content-length", "").isdigit():
        body = body[:int(headers["content-length"])]
    return Response(int(fields[1]), body)


def _dechunk(data: bytes) -> Optional[bytes]:
    """A chunked body (a server may send one even to an HTTP/1.0 client); None when it is cut short."""
    out = []
    while True:
        size_line, separator, data = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return None
        if not separator or len(data) < size:
            return None
        if size == 0:
            return b"".join(out)
        out.append(data[:size])
        data = data[size + 2:]
