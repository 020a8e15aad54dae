"""Several local MLX models in one server: another one loads on its first request, serves beside the default
one, and unloads after keep_alive idle (the next request loads it again). Real MLX engine, tiny model."""

from __future__ import annotations

import tomllib
from pathlib import Path

import anthropic
import httpx
import pytest

from mlxclaude.config.registry import ServerSettings
from mlxclaude.daemon.serve import mlx_backend_loader, other_model_loader
from mlxclaude.routing.config import parse_routing
from support.live_server import live_server
from support.waiting import wait_for

pytestmark = pytest.mark.mlx
TOKEN = "test-token"


def backend_state(server, name: str) -> dict:
    status = httpx.get(f"{server.url}/mlxclaude/status", headers={"x-api-key": TOKEN}).json()
    return next(backend for backend in status["backends"] if backend["name"] == name)


def serve_models(default_model: Path, toml: str):
    """The tiny model as `local`, with config.toml's other backends, loaded as the daemon loads them."""
    settings = ServerSettings(model=str(default_model))
    routing = parse_routing(tomllib.loads(toml), local_model=settings.model)
    return live_server(mlx_backend_loader(settings), routing=routing, load=other_model_loader(settings),
                       auth_token=TOKEN)


def test_a_second_local_model_loads_on_first_use_and_unloads_after_keep_alive(tiny_model_dir):
    toml = f'[backends.small]\nkind = "mlx"\nmodel = "{tiny_model_dir}"\nkeep_alive = "1s"\n' \
           '[routes]\n"*haiku*" = "small"\n'
    with serve_models(tiny_model_dir, toml) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0)
        ask = dict(max_tokens=8, messages=[{"role": "user", "content": "hi"}], extra_body={"temperature": 0})
        assert backend_state(server, "small")["state"] == "unloaded"
        main = client.messages.create(model="claude-sonnet-4-5", **ask)
        side = client.messages.create(model="claude-haiku-4-5", **ask)
        assert backend_state(server, "local")["state"] == "loaded"
        assert main.content[0].text == side.content[0].text  # the same weights, greedy: the same words
        wait_for(lambda: backend_state(server, "small")["state"] == "unloaded", timeout=30,
                 what="the idle model to unload")
        assert backend_state(server, "local")["state"] == "loaded"  # the default model never unloads
        again = client.messages.create(model="claude-haiku-4-5", **ask)
        assert again.content[0].text == side.content[0].text


def test_a_local_model_that_does_not_fit_in_memory_is_refused_and_its_fallback_serves(tiny_model_dir, tmp_path):
    too_big = tmp_path / "too-big"
    too_big.mkdir()
    for item in tiny_model_dir.iterdir():
        (too_big / item.name).symlink_to(item)
    with open(too_big / "model-00002-of-00002.safetensors", "wb") as sparse:
        sparse.truncate(1 << 40)  # a terabyte on paper, nothing on disk
    toml = f'[backends.big]\nkind = "mlx"\nmodel = "{too_big}"\n[routes]\n"*opus*" = "big"\n' \
           '[fallbacks]\nbig = ["local"]\n'
    with serve_models(tiny_model_dir, toml) as server:
        body = {"model": "claude-opus-4-1", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(f"{server.url}/v1/messages", json=body, headers={"x-api-key": TOKEN})
        assert response.status_code == 200  # served by local, its fallback
        big = backend_state(server, "big")
        assert big["state"] == "failed" and "not enough memory" in big["error"]
