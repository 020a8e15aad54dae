"""A vision model served end to end (the daemon's own loader, the real server, the anthropic SDK): images in a
user message and in a tool result, streamed and not; the next turn reuses the cached image; a bad image is a 400."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader
from support.images import image_block
from support.live_server import live_server

pytest.importorskip("mlx_vlm")
pytestmark = pytest.mark.mlx


@pytest.fixture(scope="module")
def server(tiny_vlm_dir):
    settings = ServerSettings(model=str(tiny_vlm_dir))
    with live_server(mlx_backend_loader(settings)) as live:
        yield live


@pytest.fixture
def client(server):
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)


def status(server) -> dict:
    return httpx.get(f"{server.url}/mlxclaude/status", timeout=30).json()


def screenshot_turn(seed: int = 1) -> dict:
    return {"role": "user", "content": [image_block(seed), {"type": "text", "text": "what is on the screen?"}]}


def test_the_model_sees_an_image_and_the_next_turn_reuses_it(server, client):
    first = client.messages.create(model="claude-x", max_tokens=6, messages=[screenshot_turn()])
    assert first.usage.input_tokens > 12  # the image's 12 tokens are in the prompt
    reply = "".join(block.text for block in first.content if block.type == "text") or "ok"
    follow_up = client.messages.create(model="claude-x", max_tokens=6, messages=[
        screenshot_turn(), {"role": "assistant", "content": reply}, {"role": "user", "content": "and then?"}])
    assert follow_up.usage.cache_read_input_tokens > 12
    cache = status(server)["cache"]
    assert cache["kind"] == "vision" and cache["hits"] >= 1


def test_an_image_in_a_tool_result_streams(client):
    messages = [
        {"role": "user", "content": "read the screenshot"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read",
                                           "input": {"file_path": "/tmp/shot.png"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [image_block(4)]}]}]
    with client.messages.stream(model="claude-x", max_tokens=6, messages=messages) as stream:
        final = stream.get_final_message()
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.input_tokens > 12


def test_a_corrupt_image_is_a_400_naming_it(client):
    bad = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "bm90IGFuIGltYWdl"}}
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="claude-x", max_tokens=4, messages=[
            {"role": "user", "content": [{"type": "text", "text": "see"}, bad]}])
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert "image 1 (image/png) could not be decoded" in raised.value.body["error"]["message"]


def test_a_request_with_images_stays_on_a_vision_model_that_is_not_loaded_yet(tiny_vlm_dir, tiny_model_dir):
    """`image_backend` is for a routed model that cannot see: a local vision model routed to but not loaded yet
    is known to see from its files, so the request loads it instead of going to the image backend."""
    import tomllib

    from mlxclaude.daemon.serve import local_model_sight, other_model_loader
    from mlxclaude.routing.config import parse_routing

    settings = ServerSettings(model=str(tiny_model_dir))
    toml = f'[backends.eyes]\nkind = "mlx"\nmodel = "{tiny_vlm_dir}"\n[routes]\n"*opus*" = "eyes"\n"*" = "local"\n'
    routing = parse_routing(tomllib.loads(toml), local_model=settings.model)
    with live_server(mlx_backend_loader(settings), routing=routing, load=other_model_loader(settings),
                     sight=local_model_sight(settings), image_backend="local") as live:
        assert live.app.state.mlxclaude.backends.by_name["eyes"].sees_images()  # before it loads
        client = anthropic.Anthropic(base_url=live.url, api_key="unused", max_retries=0)
        client.messages.create(model="claude-opus-4-8", max_tokens=4, messages=[screenshot_turn()])
        facts = {backend["name"]: backend for backend in status(live)["backends"]}
    assert facts["eyes"]["state"] == "loaded"
