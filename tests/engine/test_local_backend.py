"""Which engine runs a local model directory: mlx-vlm for a vision model when the extra is installed, mlx-lm
otherwise (the language model alone, each image a placeholder), and `models list` / `check` say which."""

import json

import pytest

from mlxclaude import paths
from mlxclaude.engine import local_backend
from mlxclaude.engine.local_backend import open_local_backend, sees_images
from support.cli_app import run_cli

pytestmark = pytest.mark.mlx


def test_a_text_model_runs_on_mlx_lm(tiny_model_dir):
    backend = open_local_backend(tiny_model_dir)
    assert type(backend).__name__ == "MlxBackend" and not backend.info.supports_vision
    assert not sees_images(tiny_model_dir)


def test_a_vision_model_runs_on_mlx_vlm(tiny_vlm_dir):
    pytest.importorskip("mlx_vlm")
    backend = open_local_backend(tiny_vlm_dir)
    assert type(backend).__name__ == "VisionBackend" and backend.info.supports_vision
    assert sees_images(tiny_vlm_dir)


def test_without_the_extra_a_vision_model_is_read_as_text_and_says_how_to_see(tiny_vlm_dir, monkeypatch, capfd):
    monkeypatch.setattr(local_backend, "vision_engine_installed", lambda: False)
    backend = open_local_backend(tiny_vlm_dir)
    assert type(backend).__name__ == "MlxBackend" and not backend.info.supports_vision
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"vision_unavailable"' in line]
    assert len(logged) == 1 and "pip install 'mlxclaude[vision]'" in logged[0]["note"]


def test_models_list_and_check_say_vision(tiny_vlm_dir, tiny_model_dir):
    pytest.importorskip("mlx_vlm")
    imported = paths.imported_models_dir()
    imported.mkdir(parents=True)
    (imported / "eyes").symlink_to(tiny_vlm_dir)
    (imported / "words").symlink_to(tiny_model_dir)
    listed = run_cli("models", "list", "--json")
    assert listed.code == 0
    assert {model["name"]: model["vision"] for model in json.loads(listed.out)} == {"eyes": True, "words": False}
    table = run_cli("models", "list").out.splitlines()
    column = table[0].index("VISION")
    assert [row[column:column + 3] for row in table[1:]] == ["yes", "-  "]
    checked = run_cli("models", "check", "eyes", "--json")
    load = [line for line in json.loads(checked.out)["lines"] if line["name"] == "load"][0]
    assert "vision (sees images)" in load["detail"]
