"""The local model catalog: HF cache (filled by real pulls from a loopback hub) plus imported models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxclaude import paths
from mlxclaude.engine import memory
from mlxclaude.engine.memory import MemoryFacts
from mlxclaude.errors import MlxClaudeError, ModelNotFound
from mlxclaude.models.catalog import AmbiguousModelName, list_models, remove_model
from mlxclaude.models.hub import pull_model
from mlxclaude.models.resolve import ResolvedModel, resolve
from support.fake_hub import THINKING_TEMPLATE, FakeHub, write_model_dir

QWEN = "mlx-community/Qwen2.5-0.5B-Instruct-4bit"
LLAMA = "mlx-community/Llama-3.2-1B-Instruct-4bit"
PLAIN = "Qwen/Qwen2.5-0.5B-Instruct"  # plain HF safetensors; mlx-lm implements qwen2
NOT_MLX = "someone/not-an-llm"  # cached by some other tool; mlx-lm has no such architecture


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "mlxclaude"))
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=64 * 2**30))
    return tmp_path


@pytest.fixture
def cached(env, monkeypatch):
    """Pull four repos into the HF cache; three are MLX models."""
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        src = env / "src"
        hub.add_repo(QWEN, write_model_dir(src / "qwen", context_length=32768))
        hub.add_repo(LLAMA, write_model_dir(src / "llama", chat_template="{{ messages }}", context_length=131072))
        hub.add_repo(PLAIN, write_model_dir(src / "plain", quant_bits=None, dtype="bfloat16"))
        hub.add_repo(NOT_MLX, write_model_dir(src / "other", quant_bits=None, model_type="not_a_real_arch"))
        snapshots = {repo: pull_model(repo) for repo in (QWEN, LLAMA, PLAIN, NOT_MLX)}
    return snapshots


@pytest.fixture
def imported(env) -> Path:
    root = paths.imported_models_dir()
    write_model_dir(root / "my-import-8bit", quant_bits=8, chat_template=THINKING_TEMPLATE, template_in_jinja=True)
    (root / ".partial-import").mkdir()  # an import in progress: hidden, not listed
    return root / "my-import-8bit"


def by_name():
    return {model.name: model for model in list_models()}


def test_list_finds_hf_cached_and_imported_models(cached, imported):
    models = by_name()
    assert sorted(models) == sorted([QWEN, LLAMA, PLAIN, "my-import-8bit"])

    qwen = models[QWEN]
    assert qwen.source == "hf" and qwen.repo_id == QWEN
    assert qwen.path == cached[QWEN] and qwen.revision == cached[QWEN].name
    assert qwen.quant == "4bit" and qwen.context_length == 32768
    assert qwen.tool_format == "hermes" and qwen.thinking is False
    assert qwen.fits_in_memory and qwen.complete
    assert qwen.size_bytes == sum(p.stat().st_size for p in cached[QWEN].iterdir())

    assert models[LLAMA].tool_format == "generic" and models[LLAMA].context_length == 131072
    assert models[PLAIN].quant == "bf16"

    mine = models["my-import-8bit"]
    assert (mine.source, mine.repo_id, mine.revision, mine.path) == ("imported", None, None, imported)
    assert mine.quant == "8bit" and mine.thinking is True and mine.tool_format == "hermes"
    assert mine.size_bytes == sum(p.stat().st_size for p in imported.iterdir())

    as_json = json.loads(json.dumps([m.to_dict() for m in models.values()]))
    assert as_json[0]["path"] and set(as_json[0]) >= {
        "name", "path", "source", "repo_id", "revision", "size_bytes", "quant", "context_length",
        "tool_format", "thinking", "fits_in_memory",
    }


def test_fits_in_memory_compares_weights_with_ram(imported, monkeypatch):
    monkeypatch.setattr(memory, "memory_facts", lambda: MemoryFacts(total_bytes=1000))  # less than the 4 KB of weights
    assert by_name()["my-import-8bit"].fits_in_memory is False


def test_list_is_empty_without_a_cache(env):
    assert list_models() == []


def test_a_missing_shard_marks_the_model_incomplete(imported):
    (imported / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}})
    )
    assert by_name()["my-import-8bit"].complete is False


def resolved_path(text: str) -> Path:
    return resolve(text, pull=False).local_path()


def test_resolve_by_name_suffix_and_path(cached, imported, tmp_path):
    assert resolve(QWEN, pull=False) == ResolvedModel(name=QWEN, path=cached[QWEN], source="listed")
    assert resolved_path("Qwen2.5-0.5B-Instruct-4bit") == cached[QWEN]
    assert resolved_path("qwen2.5-0.5b-instruct-4bit") == cached[QWEN]
    assert resolve("1B-Instruct-4bit", pull=False).name == LLAMA
    assert resolve("my-import-8bit", pull=False) == ResolvedModel(name="my-import-8bit", path=imported,
                                                                   source="listed")
    elsewhere = write_model_dir(tmp_path / "anywhere" / "model")
    assert resolve(str(elsewhere), pull=False) == ResolvedModel(name="model", path=elsewhere, source="directory")


def test_resolve_errors(cached, imported):
    with pytest.raises(AmbiguousModelName) as ambiguous:
        resolve("Instruct-4bit", pull=False)
    assert QWEN in ambiguous.value.message and LLAMA in ambiguous.value.message

    with pytest.raises(ModelNotFound) as missing:
        resolve("wen2.5-0.5B-Instruct-4bit", pull=False)  # a suffix, but not at a name boundary
    assert "mlxclaude models list" in missing.value.hint
    assert missing.value.hint.startswith(f"did you mean '{QWEN}'")  # the typo's likely meaning, first
    with pytest.raises(ModelNotFound) as typo:
        resolve("my-imprt-8bit", pull=False)
    assert typo.value.hint.startswith("did you mean 'my-import-8bit'?")

    not_pulled = resolve("mlx-community/Not-Pulled-4bit", pull=False)  # left for the loader to download
    assert not_pulled == ResolvedModel(name="mlx-community/Not-Pulled-4bit", path=None, source="hub")
    assert not_pulled.target == "mlx-community/Not-Pulled-4bit"
    with pytest.raises(ModelNotFound) as missing_repo:
        not_pulled.local_path()
    assert "mlxclaude models pull mlx-community/Not-Pulled-4bit" in missing_repo.value.hint

    with pytest.raises(ModelNotFound):
        resolved_path(NOT_MLX)  # in the cache, but not an MLX model


def test_remove_an_hf_cached_model(cached, env):
    removed = remove_model("Qwen2.5-0.5B-Instruct-4bit", allow_partial=True)
    assert removed.name == QWEN
    assert not (env / "hf" / "hub" / "models--mlx-community--Qwen2.5-0.5B-Instruct-4bit").exists()
    assert not cached[QWEN].exists()
    assert QWEN not in by_name() and LLAMA in by_name()
    assert cached[LLAMA].is_dir()


def test_remove_refuses_any_revision_of_the_hf_model_the_daemon_serves(cached):
    from mlxclaude.daemon.state import DaemonState, write_state
    from support.daemon_env import fake_daemon

    other_revision = cached[QWEN].parent / "0123abcd"
    other_revision.mkdir()
    with fake_daemon() as daemon:
        write_state(DaemonState(pid=daemon.pid, url="http://127.0.0.1:8765", host="127.0.0.1", port=8765,
                                model=QWEN, model_path=str(other_revision)))
        with pytest.raises(MlxClaudeError, match="the model the running daemon serves"):
            remove_model(QWEN)
    assert cached[QWEN].is_dir()


def test_remove_an_imported_model_by_name_or_path(imported):
    other = write_model_dir(paths.imported_models_dir() / "second")
    assert remove_model("my-import-8bit").source == "imported"
    assert not imported.exists()
    assert remove_model(str(other)).name == "second"
    assert not other.exists()
    assert paths.imported_models_dir().is_dir()


def test_remove_refuses_anything_mlxclaude_does_not_manage(imported, tmp_path):
    outside = write_model_dir(tmp_path / "mine" / "precious")
    with pytest.raises(MlxClaudeError) as info:
        remove_model(str(outside))
    assert "refusing" in info.value.message
    assert outside.is_dir()

    with pytest.raises(MlxClaudeError):
        remove_model(str(paths.imported_models_dir()))  # the folder itself, not a model in it
    assert imported.is_dir()

    with pytest.raises(MlxClaudeError):
        remove_model(str(paths.imported_models_dir() / ".." / "models" / ".." / ".."))
    assert imported.is_dir()

    with pytest.raises(ModelNotFound):
        remove_model("no-such-model")
