"""Importing a Hugging Face safetensors directory through mlx-lm's convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxclaude import paths
from mlxclaude.errors import MlxClaudeError, UsageError
from mlxclaude.models.convert_import import ConvertImportError, default_name, import_safetensors_dir


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_convert_tiny_model_to_4_bits_and_load(home, tiny_model_dir, capsys):
    from mlx_lm import generate, load

    dest = import_safetensors_dir(tiny_model_dir, name="tiny-q4", quantize=4)
    assert dest == paths.imported_models_dir() / "tiny-q4"
    config = json.loads((dest / "config.json").read_text())
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 64
    assert json.loads((dest / "mlxclaude_import.json").read_text())["format"] == "safetensors"
    assert capsys.readouterr().out == ""  # mlx-lm's [INFO] lines go to stderr, stdout stays for data
    model, tokenizer = load(str(dest))
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "QuantizedLinear"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert isinstance(generate(model, tokenizer, prompt, max_tokens=4), str)
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # temp dirs cleaned up

    with pytest.raises(MlxClaudeError) as excinfo:
        import_safetensors_dir(tiny_model_dir, name="tiny-q4")
    assert "already exists" in excinfo.value.message and "--force" in excinfo.value.hint
    assert import_safetensors_dir(tiny_model_dir, name="tiny-q4", overwrite=True) == dest
    assert "quantization" not in json.loads((dest / "config.json").read_text())


def test_default_name_uses_directory_or_hf_cache_repo(tmp_path):
    assert default_name(tmp_path / "My Model") == "My-Model"
    snapshot = tmp_path / "models--org--Qwen2.5-0.5B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    assert default_name(snapshot) == "Qwen2.5-0.5B-Instruct"


def _model_dir(tmp_path: Path, config: dict | None, weights: bool = True) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.mark.parametrize("config,weights,needle", [
    (None, True, "no config.json"),
    ({"hidden_size": 8}, True, "no model_type"),
    ({"model_type": "llama"}, False, "no model*.safetensors"),
    ({"model_type": "definitely_not_a_model"}, True, "does not support model_type 'definitely_not_a_model'"),
])
def test_not_a_convertible_model(home, tmp_path, config, weights, needle):
    with pytest.raises(ConvertImportError) as excinfo:
        import_safetensors_dir(_model_dir(tmp_path, config, weights))
    assert needle in excinfo.value.message
    assert "\n" not in excinfo.value.message and excinfo.value.hint
    assert not paths.imported_models_dir().exists() or not any(paths.imported_models_dir().iterdir())


def test_missing_directory_and_file(home, tmp_path):
    with pytest.raises(ConvertImportError, match="no such directory"):
        import_safetensors_dir(tmp_path / "nope")
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ConvertImportError) as excinfo:
        import_safetensors_dir(gguf)
    assert "GGUF" in excinfo.value.hint


def test_bad_quantize_value(home, tiny_model_dir):
    with pytest.raises(UsageError):
        import_safetensors_dir(tiny_model_dir, quantize=7)
