"""System+tools snapshots survive a restart: saved with save_prompt_cache, loaded warm, stale stamps ignored."""

from __future__ import annotations

import json
import os
import stat

import pytest

from mlxclaude.engine.cache import persist, prompt_cache
from mlxclaude.engine.cache.persist import DiskPrefixes, model_stamp, read_metadata
from mlxclaude.engine.cache.prompt_cache import PromptCache
from mlxclaude.engine.cache.store import Tier
from support.chats import conversation, run

pytestmark = pytest.mark.mlx


def test_round_trip_makes_the_first_turn_after_a_restart_warm(tiny_model, tiny_model_dir, tmp_path):
    model, tokenizer = tiny_model
    first = PromptCache(model, tokenizer, max_bytes=1 << 30, persist_dir=tmp_path, model_path=str(tiny_model_dir))
    prompt, _ = run(first, model, tokenizer, conversation("s1")[0])
    first.close()
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    metadata = persist._user_metadata(read_metadata(files[0]))
    assert json.loads(metadata["tokens"]) == prompt.tokens[:prompt.system_end]
    stamp = json.loads(metadata["mlxclaude_stamp"])
    assert stamp["model_path"] == str(tiny_model_dir.resolve()) and stamp["mlx_lm"] and stamp["model_hash"]

    restarted = PromptCache(model, tokenizer, max_bytes=1 << 30, persist_dir=tmp_path, model_path=str(tiny_model_dir))
    assert restarted.facts()["disk"]["loaded"] == 1
    (entry,) = restarted.store.entries
    assert entry.tier == Tier.SYSTEM and entry.tokens == prompt.tokens[:prompt.system_end]
    other, lease = run(restarted, model, tokenizer, conversation("s2", opening="why is the build red")[0])  # logits checked
    assert lease.note == "hit" and lease.reused == other.system_end == prompt.system_end
    restarted.close()
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # the same prefix is not written twice


def test_stale_stamps_are_ignored(tiny_model, tiny_model_dir, tmp_path, monkeypatch):
    model, tokenizer = tiny_model
    first = PromptCache(model, tokenizer, max_bytes=1 << 30, persist_dir=tmp_path, model_path=str(tiny_model_dir))
    run(first, model, tokenizer, conversation("s1")[0])
    first.close()
    real = model_stamp(tiny_model_dir)
    monkeypatch.setattr(prompt_cache, "model_stamp", lambda path: {**real, "mlx_lm": "0.0.0-other"})
    later = PromptCache(model, tokenizer, max_bytes=1 << 30, persist_dir=tmp_path, model_path=str(tiny_model_dir))
    assert len(later.store) == 0 and later.facts()["disk"]["loaded"] == 0


def test_truncated_files_are_moved_aside_logged_once_and_counted_and_old_files_pruned(
        tiny_model, tiny_model_dir, tmp_path, capfd):
    model, tokenizer = tiny_model
    disk = DiskPrefixes(tmp_path, model_stamp(tiny_model_dir), keep=2, max_files=3)
    cache = PromptCache(model, tokenizer, max_bytes=1 << 30)
    for index in range(5):
        prompt, lease = run(cache, model, tokenizer, conversation(f"s{index}")[0])
        disk.save([index, *prompt.tokens[:prompt.system_end]], cache.store.get(prompt.tokens[:prompt.system_end]).payload)
    assert len(list(tmp_path.glob("*.safetensors"))) == 3
    newest = sorted(tmp_path.glob("*.safetensors"), key=lambda path: path.stat().st_mtime)[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    loaded = disk.load()
    assert len(loaded) == 2 and len(disk.errors) == 1 and disk.corrupt == 1
    assert [path.name for path in (tmp_path / "corrupt").iterdir()] == [newest.name]
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if "prompt_cache_file_corrupt" in line]
    assert len(logged) == 1 and logged[0]["file"] == newest.name
    again = DiskPrefixes(tmp_path, model_stamp(tiny_model_dir), keep=2, max_files=3)
    assert len(again.load()) == 2 and again.corrupt == 0  # the next start neither trips on it nor logs it
    assert "prompt_cache_file_corrupt" not in capfd.readouterr().err


def test_files_are_0600_in_a_0700_directory_that_is_tightened(tiny_model_dir, tmp_path):
    import mlx.core as mx
    from mlx_lm.models.cache import KVCache

    directory = tmp_path / "prompt-cache"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)   # as an earlier version left it
    kv = KVCache()
    kv.update_and_fetch(mx.zeros((1, 1, 4, 8)), mx.zeros((1, 1, 4, 8)))
    mx.eval(kv.state)
    disk = DiskPrefixes(directory, model_stamp(tiny_model_dir))
    saved = disk.save([1, 2, 3], [kv])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert [path.name for path in directory.iterdir()] == [saved.name]      # no temp file left
    assert disk.load()[0][0] == [1, 2, 3]

    fresh = DiskPrefixes(tmp_path / "new" / "prompt-cache", model_stamp(tiny_model_dir))
    fresh.save([4], [kv])
    assert stat.S_IMODE(fresh.directory.stat().st_mode) == 0o700
