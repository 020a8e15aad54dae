"""The one model resolver: a directory, a name from `models list`, or a repo id → ResolvedModel."""

from __future__ import annotations

import dataclasses

import pytest

from mlxclaude import paths
from mlxclaude.errors import ModelNotFound
from mlxclaude.models.resolve import ResolvedModel, is_repo_id, resolve
from support.fake_hub import FakeHub, write_model_dir

REPO = "mlx-community/Tiny-Test-4bit"


@pytest.fixture
def hub_env(isolated_home, monkeypatch):
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return isolated_home


def test_a_directory_is_itself_named_after_itself(tmp_path, monkeypatch):
    model = write_model_dir(tmp_path / "models" / "my-model")
    resolved = resolve(str(model), pull=False)
    assert resolved == ResolvedModel(name="my-model", path=model.resolve(), source="directory")
    assert resolved.target == resolved.argument == str(model.resolve())
    monkeypatch.chdir(model)
    assert resolve(".", pull=True) == resolved  # relative, absolute afterwards; never a download
    assert dataclasses.is_dataclass(resolved) and resolved.__dataclass_params__.frozen


def test_a_listed_name_is_its_directory(hub_env):
    imported = write_model_dir(paths.imported_models_dir() / "local-model-8bit", quant_bits=8)
    resolved = resolve("local-model-8bit", pull=False)
    assert resolved == ResolvedModel(name="local-model-8bit", path=imported, source="listed")
    assert resolved.argument == "local-model-8bit" and resolved.local_path() == imported


def test_a_repo_id_is_pulled_only_when_asked(hub_env, monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.add_repo(REPO, write_model_dir(hub_env / "src" / "tiny"))
        pending = resolve(REPO, pull=False)
        assert pending == ResolvedModel(name=REPO, path=None, source="hub") and pending.target == REPO
        with pytest.raises(ModelNotFound) as not_local:
            pending.local_path()
        assert not_local.value.hint == f"see `mlxclaude models list`, or download it with `mlxclaude models pull {REPO}`"

        pulled = resolve(REPO, pull=True)
        assert pulled.source == "hub" and pulled.name == REPO and (pulled.path / "config.json").is_file()
    listed = resolve(REPO, pull=False)  # in the Hugging Face cache now: `models list` shows it
    assert listed == ResolvedModel(name=REPO, path=pulled.path, source="listed")


@pytest.mark.parametrize("text, message", [
    ("/no/such/model", "model directory not found: /no/such/model"),
    ("./nope", "model directory not found: ./nope"),
    ("a/b/c", "model directory not found: a/b/c"),
    ("no-such-name", "model not found: no-such-name"),
    ("", "model not found: "),
])
def test_what_resolves_to_nothing_says_so(hub_env, text, message):
    with pytest.raises(ModelNotFound) as missing:
        resolve(text, pull=True)
    assert missing.value.message == message and missing.value.hint


@pytest.mark.parametrize("text, expected", [
    ("org/name", True), ("org/name@main", True), ("/abs/path", False), ("~/models", False),
    ("org/.hidden", False), ("a/b/c", False), ("name", False), ("org/", False),
])
def test_is_repo_id(text, expected):
    assert is_repo_id(text) is expected
