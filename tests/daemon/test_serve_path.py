"""`mlxclaude serve`: the daemon's own serve path in the foreground, on the tiny real model in a real process."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from mlxclaude import paths
from support.cli_app import start_process
from support.live_server import free_port

pytestmark = pytest.mark.mlx
ASK = {"model": "claude-local", "max_tokens": 4000, "stream": True,
       "messages": [{"role": "user", "content": "Tell me a very long story."}]}


def wait_ready(url: str, proc, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            health = httpx.get(f"{url}/health", timeout=2)
            if health.json()["status"] != "loading":
                return health.json()
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)


def test_ctrl_c_ends_open_streams_with_an_error_event_and_no_daemon_is_registered(tiny_model_dir, tmp_path):
    from tiny_model import copy_without_eos

    model = copy_without_eos(tiny_model_dir, tmp_path / "model")  # the reply runs until the interrupt
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_process("serve", "--model", str(model), "--port", str(port))
    try:
        assert wait_ready(url, proc)["status"] == "ok"
        assert not paths.state_file().exists()  # `up`, `status` and `down` do not see a foreground server
        assert httpx.post(f"{url}/mlxclaude/shutdown").status_code == 501  # Ctrl-C is its way to stop
        with httpx.stream("POST", f"{url}/v1/messages", json=ASK, timeout=60) as response:
            lines = response.iter_lines()
            seen = []
            for line in lines:
                seen.append(line)
                if line.startswith("event: content_block_delta"):
                    break
            proc.send_signal(signal.SIGINT)
            rest = list(lines)
        assert "event: error" in rest, seen + rest
        assert "event: message_stop" not in rest
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130  # an interrupt, as for any command stopped with Ctrl-C
        assert '"event":"daemon_start"' in err and '"foreground":true' in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
