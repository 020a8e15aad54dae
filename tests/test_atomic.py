"""Atomic writes (old or new content, never half) and private directories."""

from __future__ import annotations

import os
import stat

import pytest

from mlxclaude.atomic import atomic_target, atomic_write_bytes, private_dir


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_replaces_the_file_with_the_mode_asked_for(tmp_path):
    target = tmp_path / "sub" / "file.json"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one" and mode(target) == 0o600
    atomic_write_bytes(target, b"two", mode=0o640)
    assert target.read_bytes() == b"two" and mode(target) == 0o640
    assert os.listdir(target.parent) == ["file.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "cache.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_target(target, suffix=".safetensors") as temp:
            assert temp.parent == tmp_path and temp.name.startswith(".") and temp.suffix == ".safetensors"
            temp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["cache.safetensors"]


def test_private_dir_creates_and_tightens(tmp_path):
    fresh = private_dir(tmp_path / "a" / "b")
    assert fresh.is_dir() and mode(fresh) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o755)
    private_dir(loose)
    assert mode(loose) == 0o700
