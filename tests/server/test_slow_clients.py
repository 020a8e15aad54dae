"""Clients that are slow or vanish: one that trickles its headers or its body does not hold a connection
forever (slow-loris); one that goes away mid-body is no internal error."""

from __future__ import annotations

import json
import socket
import time

import pytest

from support.live_server import live_server
from support.scripted_backend import ScriptedBackend
from support.waiting import wait_for

ASK = json.dumps({"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture(scope="module")
def server():
    with live_server(lambda: ScriptedBackend(lambda chat: "ok"), header_timeout=1.0, body_timeout=1.0) as server:
        yield server


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(60)
    return sock


def closed_by_server(sock: socket.socket) -> bytes | None:
    """What the server sent before it closed the connection, or None while it is still open."""
    sock.setblocking(False)
    try:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data
    except BlockingIOError:
        return None
    except ConnectionError:
        return b""


def test_sixty_clients_trickling_their_headers_are_all_disconnected(server):
    sockets = [connect(server) for _ in range(60)]
    for sock in sockets:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    deadline = time.monotonic() + 60
    open_ones = list(sockets)
    while open_ones and time.monotonic() < deadline:
        for sock in list(open_ones):
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # a header line now and then: each one resets nothing
            except OSError:
                open_ones.remove(sock)
                continue
            if closed_by_server(sock) is not None:
                open_ones.remove(sock)
        time.sleep(0.2)
    assert not open_ones, f"{len(open_ones)} of 60 slow connections still open"
    for sock in sockets:
        sock.close()


def test_a_client_that_connects_and_says_nothing_is_disconnected(server):
    sock = connect(server)
    wait_for(lambda: closed_by_server(sock) is not None, what="the idle connection closed")
    sock.close()


def test_a_body_that_never_finishes_is_answered_408_and_disconnected(server):
    sock = connect(server)
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                 b"content-length: %d\r\n\r\n" % len(ASK) + ASK[:10])
    answer = wait_for(lambda: closed_by_server(sock), what="the slow body answered")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert json.loads(body)["error"]["message"].startswith("the request body did not arrive within 1s")
    sock.close()


def test_a_prompt_client_keeps_its_keep_alive_connection(server):
    sock = connect(server)
    for _ in range(2):
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n" % len(ASK) + ASK)
        reply = b""
        while b'"ok"' not in reply:
            reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200")
    sock.close()


def test_a_client_gone_mid_body_is_logged_as_cancelled_not_as_an_internal_error(server, capfd):
    sock = connect(server)
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n{\"model\"")
    time.sleep(0.1)
    sock.close()
    logged = wait_for(lambda: [json.loads(line) for line in capfd.readouterr().err.splitlines()
                               if '"request_cancelled"' in line], what="the cancelled request logged")
    assert logged[0]["note"] == "the client went away before its request body arrived"
