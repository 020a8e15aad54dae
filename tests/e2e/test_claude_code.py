"""The real Claude Code binary against the real server, headless (`claude -p`)."""

from __future__ import annotations

import json

import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.claude_code import claude_env, require_claude, run_claude
from support.live_server import live_server
from support.scripted_backend import ScriptedBackend

pytestmark = pytest.mark.e2e
TOKEN = "e2e-token"
SMALL_PROMPT = ["--tools", "Bash", "--system-prompt", "You are a terse coding agent."]
# `claude -p` fails a reply that stops at max_tokens; the tiny model ends one after ~40 tokens on average, so a cap
# this high is a reply that ended by itself, bar one in tens of thousands
REPLY_CAP = 512


@pytest.fixture(scope="module")
def claude():
    return require_claude()


def served_kinds(server) -> int:
    return server.worker.requests_served


def test_claude_says_hi_through_the_real_mlx_engine(claude, tiny_model_dir, tmp_path):
    settings = ServerSettings(model=str(tiny_model_dir))
    with live_server(mlx_backend_loader(settings), auth_token=TOKEN, max_output_tokens=REPLY_CAP) as server:
        result = run_claude(claude, ["-p", "say hi", *SMALL_PROMPT], claude_env(server.url, TOKEN, tmp_path / "cfg"),
                            cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert served_kinds(server) >= 1, "claude exited without asking the server"


def test_claude_runs_a_bash_tool_the_scripted_model_asks_for(claude, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()

    def script(chat):
        if chat.json_schema is not None:
            return '{"title": "Write a file"}'
        if chat.messages[-1]["role"] == "tool":
            return "Wrote the file."
        return ('I will write it.<tool_call>{"name": "Bash", "arguments": '
                '{"command": "echo round-trip > proof.txt", "description": "write proof"}}</tool_call>')

    backend = ScriptedBackend(script)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        result = run_claude(claude, ["-p", "write the proof file", "--allowedTools", "Bash", *SMALL_PROMPT],
                            claude_env(server.url, TOKEN, tmp_path / "cfg"), cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (workdir / "proof.txt").read_text().strip() == "round-trip"
    assert "Wrote the file." in result.stdout
    follow_up = backend.requests[-1].messages
    assert follow_up[-2]["role"] == "assistant" and follow_up[-2]["tool_calls"][0]["function"]["name"] == "Bash"
    tool_result = follow_up[-1]
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == follow_up[-2]["tool_calls"][0]["id"]


def test_two_claude_sessions_at_once_are_generated_together(claude, tiny_model_dir, tmp_path):
    """Two `claude -p` runs started together (a second terminal, a subagent): their turns share the batch and both
    finish. (This Claude Code sends no title request under -p, so two sessions make the overlap.)"""
    import contextlib
    import threading

    # the two processes' start-up jitter on a loaded machine can exceed a whole tiny-model turn: each request
    # waits (up to 20 s) at rendering for the other, so both reach the engine together
    meeting = threading.Barrier(2, timeout=20)

    def load():
        backend = mlx_backend_loader(ServerSettings(model=str(tiny_model_dir)))()
        render = backend.render

        def render_together(chat):
            with contextlib.suppress(threading.BrokenBarrierError):
                meeting.wait()
            return render(chat)

        backend.render = render_together
        return backend

    with live_server(load, auth_token=TOKEN, max_output_tokens=REPLY_CAP) as server:
        for attempt in range(3):  # both start together; the overlap is near certain, not guaranteed
            meeting.reset()
            server.worker.batcher.largest_batch = 0
            results = {}

            def run(index):
                results[index] = run_claude(claude, ["-p", f"say hi ({index})", *SMALL_PROMPT],
                                            claude_env(server.url, TOKEN, tmp_path / f"cfg-{attempt}-{index}"),
                                            cwd=tmp_path)

            threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(300)
            for result in results.values():
                assert result.returncode == 0, result.stderr[-2000:]
            if server.worker.batcher.largest_batch >= 2:
                return
    pytest.fail("the two sessions' requests never overlapped in the batch")


def test_claude_is_routed_by_tier_and_falls_back_when_the_upstream_dies(claude, tiny_model_dir, tmp_path):
    """Routes keep Claude Code's own model ids: `--model haiku` goes to an OpenAI-compatible engine (the real
    mlx_lm.server on the tiny model), everything else to the local model; when the engine is killed mid-session,
    the haiku turns fall back to local."""
    import tomllib

    import httpx

    from mlxclaude.routing.config import parse_routing
    from support.mlx_lm_server import MlxLmServer

    upstream = MlxLmServer(tiny_model_dir, tmp_path / "mlx-lm.log").start()
    toml = (f'[backends.gpu]\nkind = "openai"\nurl = "{upstream.url}/v1"\nmodel = "default_model"\n'
            f'[routes]\n"*haiku*" = "gpu"\n"*" = "local"\n[fallbacks]\ngpu = ["local"]\n')
    backend = ScriptedBackend(lambda chat: "served by the local model")
    env = {**claude_env("", TOKEN, tmp_path / "cfg"), "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "32",
           "MAX_THINKING_TOKENS": "0"}  # short replies: the tiny model's words are noise
    try:
        with live_server(lambda: backend, routing=parse_routing(tomllib.loads(toml), local_model="local"),
                         auth_token=TOKEN) as server:
            env["ANTHROPIC_BASE_URL"] = server.url

            def served_by(name: str) -> float:
                text = httpx.get(f"{server.url}/metrics", headers={"x-api-key": TOKEN}).text
                return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                           if line.startswith("mlxclaude_requests_total{") and f'backend="{name}"' in line)

            default = run_claude(claude, ["-p", "say hi", *SMALL_PROMPT], env, cwd=tmp_path)
            assert default.returncode == 0, default.stderr[-2000:]
            assert "served by the local model" in default.stdout
            assert served_by("gpu") == 0

            haiku = run_claude(claude, ["-p", "say hi", "--model", "haiku", *SMALL_PROMPT], env, cwd=tmp_path)
            assert haiku.returncode == 0, haiku.stderr[-2000:]
            assert "served by the local model" not in haiku.stdout and served_by("gpu") >= 1

            upstream.kill()
            fallen = run_claude(claude, ["-p", "say hi", "--model", "haiku", *SMALL_PROMPT], env, cwd=tmp_path)
            assert fallen.returncode == 0, fallen.stderr[-2000:]
            assert "served by the local model" in fallen.stdout
    finally:
        upstream.kill()


def test_claude_reads_a_pdf_and_its_text_reaches_the_model(claude, tmp_path):
    """Claude Code's Read tool on a .pdf sends the file as a base64 document block: its text, with page markers,
    is what the model reads next."""
    from support.pdf_files import text_pdf

    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "report.pdf").write_bytes(text_pdf("The code word is TANGERINE-17", "page two"))

    def script(chat):
        if chat.json_schema is not None:
            return '{"title": "Read a PDF"}'
        if "TANGERINE-17" in str(chat.messages):
            return "The code word is TANGERINE-17."
        if any(message["role"] == "tool" for message in chat.messages):
            return "The PDF did not reach me."
        return (f'<tool_call>{{"name": "Read", "arguments": {{"file_path": "{workdir / "report.pdf"}"}}}}'
                '</tool_call>')

    backend = ScriptedBackend(script)
    with live_server(lambda: backend, auth_token=TOKEN) as server:
        result = run_claude(claude, ["-p", "what is the code word in report.pdf?", "--tools", "Read",
                                     "--allowedTools", "Read", "--system-prompt", "You are terse."],
                            claude_env(server.url, TOKEN, tmp_path / "cfg"), cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TANGERINE-17" in result.stdout, result.stdout[-2000:]
    seen = str(backend.requests[-1].messages)
    assert "[page 1 of 2]" in seen and "[page 2 of 2]" in seen


def test_claude_searches_the_web_through_the_server(claude, tmp_path):
    """Claude Code's WebSearch tool asks the model with the web_search server tool; the server runs the search on
    a SearXNG-shaped loopback server and Claude Code gets the results."""
    from mlxclaude.websearch.config import parse_web_search
    from support.upstreams import Answer, recording_upstream

    hits = {"results": [{"url": "https://ml-explore.github.io/mlx/", "title": "MLX docs", "content": "arrays"}]}

    def script(chat):
        if chat.json_schema is not None:
            return '{"title": "Search the web"}'
        tool_results = [message["content"] for message in chat.messages if message["role"] == "tool"]
        if chat.web_search is not None:  # Claude Code's search request
            if tool_results:
                return "MLX docs are at https://ml-explore.github.io/mlx/"
            return '<tool_call>{"name": "web_search", "arguments": {"query": "mlx docs"}}</tool_call>'
        if tool_results:
            return "The search found the MLX docs."
        return '<tool_call>{"name": "WebSearch", "arguments": {"query": "mlx docs"}}</tool_call>'

    backend = ScriptedBackend(script)
    with recording_upstream(lambda request: Answer(body=hits)) as searxng:
        config = parse_web_search({"web_search": {"provider": "searxng", "url": searxng.url}})
        with live_server(lambda: backend, auth_token=TOKEN, web_search=config) as server:
            result = run_claude(claude, ["-p", "search the web for mlx docs", "--tools", "WebSearch",
                                         "--allowedTools", "WebSearch", "--system-prompt", "You are terse.",
                                         "--output-format", "json"],
                                claude_env(server.url, TOKEN, tmp_path / "cfg"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [request.query.get("q") for request in searxng.requests] == [["mlx docs"]]
    assert any(chat.web_search is not None for chat in backend.requests)
    final = json.loads(result.stdout)
    assert final["result"] == "The search found the MLX docs."
    # Claude Code counts the searches it was told of (what `Did 1 search` shows)
    assert sum(usage.get("webSearchRequests", 0) for usage in final["modelUsage"].values()) == 1, final


@pytest.mark.parametrize("model", ["vision", "text"])
def test_claude_reads_a_png_and_the_model_sees_it_or_reads_a_placeholder(claude, model, tiny_vlm_dir, tiny_model_dir,
                                                                         tmp_path):
    """Claude Code's Read tool on a .png sends the image in a tool result. On a vision model (mlx-vlm) it reaches the
    processor as image tokens; on a text model the session carries on with a placeholder. The first turn's tool
    call is scripted (a random model calls no tool); the turn after it runs on the real engine."""
    from mlxclaude.protocol.content_parts import IMAGE_PLACEHOLDER
    from support.images import png_bytes

    if model == "vision":
        pytest.importorskip("mlx_vlm")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "screen.png").write_bytes(png_bytes(5))
    rendered = []

    def load():
        backend = mlx_backend_loader(ServerSettings(model=str(tiny_vlm_dir if model == "vision" else tiny_model_dir)))()
        render, generate = backend.render, backend.generate

        def recording_render(chat):
            rendered.append(render(chat))
            return rendered[-1]

        def read_first(prompt, chat, max_tokens, cancel, progress=None):
            if chat.json_schema is None and not any(message["role"] == "tool" for message in chat.messages):
                yield f'<tool_call>{{"name": "Read", "arguments": {{"file_path": "{workdir / "screen.png"}"}}}}</tool_call>'
                from mlxclaude.engine.backend import GenerationStats

                yield GenerationStats(prompt_tokens=len(prompt.tokens), generated_tokens=1)
                return
            yield from generate(prompt, chat, max_tokens, cancel, progress)

        backend.render, backend.generate = recording_render, read_first
        return backend

    # one at a time (max_batch 1): through `generate`, which the test wraps
    with live_server(load, auth_token=TOKEN, max_output_tokens=REPLY_CAP, max_batch=1) as server:
        result = run_claude(claude, ["-p", "what is in screen.png?", "--tools", "Read", "--allowedTools", "Read",
                                     "--system-prompt", "You are terse."],
                            claude_env(server.url, TOKEN, tmp_path / "cfg"), cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    after_read = [prompt for prompt in rendered if "screen.png" in prompt.text and "tool_response" in prompt.text]
    assert after_read, "claude never sent the Read result back"
    if model == "vision":
        assert after_read[-1].media is not None and len(after_read[-1].media.digests) == 1
        assert after_read[-1].text.count("<|image_pad|>") == 1
    else:
        assert IMAGE_PLACEHOLDER in after_read[-1].text
