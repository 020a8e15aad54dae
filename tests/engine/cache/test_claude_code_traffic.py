"""Real Claude Code traffic through the server, rendered with the real tiny tokenizer and chat template.

Two `claude -p` conversations (title request, then main turns with Bash round trips driven by a scripted
model) must show what the prompt cache is built on:
- every main turn after the first renders to a strict token extension of the previous turn's prompt;
- the second conversation's prompt starts with the first one's system+tools prefix (RenderedPrompt.system_end),
  although Claude Code's billing header differs between them.

Re-record the benchmark traffic (bench/traffic/) with
  python tests/engine/cache/test_claude_code_traffic.py --out bench/traffic/claude_session.jsonl --tools Bash
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run as a script: put the repo and tests/ on the path as pytest does
    sys.path[:0] = [str(Path(__file__).resolve().parents[3]), str(Path(__file__).resolve().parents[2])]

from mlxclaude.config.registry import ServerSettings
from mlxclaude.engine.render import render_chat
from mlxclaude.server.app import create_app
from support.claude_code import claude_env, find_claude, require_claude, run_claude
from support.live_server import LiveServer, free_port
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.e2e
TOKEN = "traffic-token"
CONVERSATIONS = (  # (prompt, Bash commands the scripted model runs before it answers)
    ("write hello into out.txt and show it", ["echo hello > out.txt", "cat out.txt"]),
    ("list the files here", ["ls -la"]),
)


def script(chat) -> str:
    if chat.json_schema is not None:
        return '{"title": "Files in the project"}'
    opening = next((m["content"] for m in chat.messages if m["role"] == "user"), "")
    commands = next((commands for prompt, commands in CONVERSATIONS if prompt in opening), [])
    done = sum(1 for message in chat.messages if message["role"] == "tool")
    if done >= len(commands):
        return "Done."
    call = {"name": "Bash", "arguments": {"command": commands[done], "description": f"step {done + 1}"}}
    return f"Running it.<tool_call>{json.dumps(call)}</tool_call>"


class RenderingScriptedBackend(ScriptedBackend):
    """The scripted engine, but prompts rendered by the real tokenizer and chat template (real token ids)."""

    def __init__(self, tokenizer) -> None:
        super().__init__(script)
        self.tokenizer = tokenizer
        self.rendered: list[tuple[Any, Any]] = []

    def render(self, chat):
        return render_chat(self.tokenizer, chat, self.info.think_open, self.info.think_close,
                           tool_format=self.info.tool_format)

    def generate(self, prompt, chat, max_tokens, cancel, progress=None):
        self.rendered.append((chat, prompt))
        yield from super().generate(prompt, chat, max_tokens, cancel, progress)


class BodyRecorder:
    """ASGI wrapper that keeps every POSTed JSON body with its session header."""

    def __init__(self, app) -> None:
        self.app = app
        self.state = app.state
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def recording_receive():
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
                    self.bodies.append({"path": scope["path"], "session": headers.get("x-claude-code-session-id"),
                                        "body": json.loads(b"".join(chunks) or b"null")})
            return message

        return await self.app(scope, recording_receive, send)


def record_conversations(claude: Path, tokenizer, root: Path, extra_args: list[str]):
    """Run the CONVERSATIONS through a live server; returns (recorded bodies, backend with its rendered prompts)."""
    backend = RenderingScriptedBackend(tokenizer)
    app = create_app(ServerSettings(auth_token=TOKEN), lambda: backend)
    recorder = BodyRecorder(app)
    server = LiveServer(recorder, free_port())
    server.app = app  # LiveServer.worker reads app.state
    server.start()
    workdir = root / "work"
    workdir.mkdir(exist_ok=True)
    try:
        for prompt, _ in CONVERSATIONS:
            env = claude_env(server.url, TOKEN, root / "claude-config")  # one user: the same config dir
            env.pop("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", None)  # keep the title side request
            result = run_claude(claude, ["-p", prompt, "--allowedTools", "Bash", *extra_args], env, cwd=workdir)
            assert result.returncode == 0, result.stderr[-2000:]
    finally:
        server.stop()
    return recorder.bodies, backend


def scrubbed(record: dict[str, Any]) -> dict[str, Any]:
    """The body without the machine's device id."""
    body = json.loads(json.dumps(record["body"]))
    metadata = body.get("metadata") or {}
    if isinstance(metadata.get("user_id"), str) and "device_id" in metadata["user_id"]:
        user = json.loads(metadata["user_id"])
        user["device_id"] = "0" * 64
        metadata["user_id"] = json.dumps(user, separators=(",", ":"))
    return {**record, "body": body}


def write_jsonl(records: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(scrubbed(record), separators=(",", ":")) + "\n" for record in records)
    if out.suffix == ".xz":  # whole bodies repeat turn after turn: xz's large window takes them out
        out.write_bytes(lzma.compress(text.encode(), preset=9 | lzma.PRESET_EXTREME))
    else:
        out.write_text(text)


@pytest.fixture(scope="module")
def claude():
    return require_claude()


def starts_with(tokens: list[int], prefix: list[int]) -> bool:
    return tokens[:len(prefix)] == prefix


def test_claude_code_turns_extend_each_other_and_share_the_system_prefix(claude, tiny_model_dir, tmp_path):
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    bodies, backend = record_conversations(claude, tokenizer, tmp_path, [])  # the full prompt: every tool
    if os.environ.get("MLXCLAUDE_RECORD_TRAFFIC"):
        write_jsonl(bodies, Path(os.environ["MLXCLAUDE_RECORD_TRAFFIC"]))

    sessions: list[str] = []
    mains: dict[str, list] = {}
    for chat, prompt in backend.rendered:
        assert chat.session_id, "Claude Code always names its session"
        if chat.session_id not in sessions:
            sessions.append(chat.session_id)
        if chat.kind == "main":
            mains.setdefault(chat.session_id, []).append(prompt)
    kinds = [chat.kind for chat, _ in backend.rendered]
    assert len(sessions) == 2 and kinds.count("title") == 2, kinds
    assert [len(mains[session]) for session in sessions] == [len(commands) + 1 for _, commands in CONVERSATIONS]
    assert max(len(prompt.tokens) for prompts in mains.values() for prompt in prompts) < 40_000

    for session in sessions:  # each main turn strictly extends the previous one
        for earlier, later in zip(mains[session], mains[session][1:]):
            assert len(later.tokens) > len(earlier.tokens) and starts_with(later.tokens, earlier.tokens)

    first, second = (mains[session][0] for session in sessions)
    end = first.system_end
    assert end is not None and end == second.system_end
    assert starts_with(second.tokens, first.tokens[:end])
    head = tokenizer.decode(first.tokens[:end])
    assert "</tools>" in head and "Bash" in head and len(mains[sessions[0]][0].tokens) - end < 3_000
    headers = [body["body"]["system"][0]["text"] for body in bodies if body["body"].get("tools")]
    assert headers[0].startswith("x-anthropic-billing-header:") and headers[0] != headers[-1]
    assert "x-anthropic-billing-header" not in first.text


def main() -> None:
    parser = argparse.ArgumentParser(description="Record Claude Code request bodies for bench/cache_replay.py")
    parser.add_argument("--out", type=Path, required=True, help=".jsonl, or .jsonl.xz to compress")
    parser.add_argument("--tools", help="pass --tools to claude (e.g. Bash) for a smaller prompt")
    args = parser.parse_args()
    from mlx_lm.tokenizer_utils import load as load_tokenizer
    from tiny_model import ensure_tiny_model

    claude = find_claude()
    if claude is None:
        raise SystemExit("claude binary not found")
    with tempfile.TemporaryDirectory() as root:
        bodies, _ = record_conversations(claude, load_tokenizer(ensure_tiny_model()), Path(root),
                                         ["--tools", args.tools] if args.tools else [])
    write_jsonl(bodies, args.out)
    print(f"wrote {len(bodies)} requests to {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
