"""`pull_model` against a loopback hub: real huggingface_hub, real HTTP, real HF cache layout."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mlxclaude.errors import UsageError
from mlxclaude.models.hub import pull_model, split_repo_revision
from mlxclaude.models.hub_errors import DownloadFailed, HubUnreachable, NotAnMlxModel, RepoAccessDenied, RepoNotFound, RevisionNotFound
from support.fake_hub import FakeHub, safetensors_bytes, write_model_dir

REPO = "mlx-community/Tiny-Instruct-4bit"
MODEL_FILES = {"config.json", "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json", "merges.txt", "model.safetensors"}
MiB = 1024 * 1024


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "mlxclaude"))
    for name in ("HF_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def hub(hf_home, monkeypatch):
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def add_model(hub: FakeHub, tmp_path: Path, repo: str = REPO, **kwargs) -> str:
    return hub.add_repo(repo, write_model_dir(tmp_path / "src" / repo, **kwargs.pop("model", {})), **kwargs)


def test_pull_lands_in_the_hf_cache_with_only_the_files_a_model_needs(hub, hf_home, tmp_path):
    extra = {
        "pytorch_model.bin": b"torch" * 100,
        "tiny-q4_k_m.gguf": b"gguf" * 100,
        "consolidated.safetensors": safetensors_bytes(256),
        "original/params.json.bak": b"{}",
        "README.md": b"# tiny",
        ".gitattributes": b"*.safetensors filter=lfs",
    }
    sha = add_model(hub, tmp_path, model={"extra_files": extra})

    path = pull_model(REPO)

    repo_dir = hf_home / "hub" / "models--mlx-community--Tiny-Instruct-4bit"
    assert path == repo_dir / "snapshots" / sha
    assert (repo_dir / "refs" / "main").read_text() == sha
    assert {p.name for p in path.iterdir()} == MODEL_FILES
    assert all((path / name).is_symlink() and (path / name).resolve().parent == repo_dir / "blobs" for name in MODEL_FILES)
    assert (path / "model.safetensors").read_bytes() == (tmp_path / "src" / REPO / "model.safetensors").read_bytes()
    assert {r.filename for r in hub.gets()} == MODEL_FILES  # nothing else was even requested


def test_pull_draws_progress_on_the_display_it_is_given(hub, tmp_path, capsys):
    from mlxclaude.cli._progress import pull_with_progress

    add_model(hub, tmp_path, model={"weights_bytes": 300_000})

    pull_with_progress(REPO)

    out = capsys.readouterr()
    assert out.out == ""
    assert REPO in out.err and "6/6 files" in out.err and "kB" in out.err


def test_the_display_gets_bytes_and_files(hub, tmp_path):
    class Recorder:
        def __init__(self):
            self.tasks, self.updates = {}, []

        def add_task(self, description, *, total, completed, visible, **fields):
            self.tasks[len(self.tasks)] = (description, visible, fields["bytes"])
            return len(self.tasks) - 1

        def update(self, task_id, *, completed=None, total=None):
            self.updates.append((task_id, completed, total))

    add_model(hub, tmp_path, model={"weights_bytes": 300_000})
    display = Recorder()
    pull_model(REPO, display=display)
    shown = {task: (label, is_bytes) for task, (label, visible, is_bytes) in display.tasks.items() if visible}
    assert sorted(shown.values()) == [("files", False), (REPO, True)]
    byte_bar = next(task for task, (label, _) in shown.items() if label == REPO)
    final = [(completed, total) for task, completed, total in display.updates if task == byte_bar][-1]
    assert final[0] == final[1] > 300_000


def test_pull_without_progress_prints_nothing(hub, tmp_path, capsys):
    add_model(hub, tmp_path)
    pull_model(REPO)
    assert capsys.readouterr() == ("", "")


def test_pull_honours_hf_hub_cache(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    sha = add_model(hub, tmp_path)
    path = pull_model(REPO)
    assert path == tmp_path / "elsewhere" / "models--mlx-community--Tiny-Instruct-4bit" / "snapshots" / sha


def test_pull_at_a_revision(hub, hf_home, tmp_path):
    sha = add_model(hub, tmp_path, refs=("main", "v1"))
    path = pull_model(f"{REPO}@v1")
    assert path.name == sha
    assert (hf_home / "hub" / "models--mlx-community--Tiny-Instruct-4bit" / "refs" / "v1").read_text() == sha

    with pytest.raises(RevisionNotFound) as info:
        pull_model(REPO, "nope")
    assert info.value.message == f"revision not found: {REPO}@nope"


def test_a_cut_connection_resumes_from_the_byte_it_reached(hub, tmp_path):
    # huggingface_hub writes 10 MiB chunks; a cut after the first one must resume with a Range request.
    add_model(hub, tmp_path, model={"weights_bytes": 11 * MiB})
    hub.cut_after(REPO, "model.safetensors", 10 * MiB + 4096)

    path = pull_model(REPO)

    assert (path / "model.safetensors").read_bytes() == (tmp_path / "src" / REPO / "model.safetensors").read_bytes()
    gets = hub.gets("model.safetensors")
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    assert gets[1].headers["range"] == f"bytes={10 * MiB}-"


def test_pulling_again_after_a_failure_fetches_only_what_is_missing(hub, tmp_path):
    add_model(hub, tmp_path, model={"weights_bytes": 64 * 1024})
    hub.fail(REPO, "model.safetensors", 500)

    with pytest.raises(DownloadFailed) as info:
        pull_model(REPO)
    assert info.value.message == f"download of {REPO} failed: HTTP 500 for model.safetensors"
    assert "again" in info.value.hint

    path = pull_model(REPO)
    assert {p.name for p in path.iterdir()} == MODEL_FILES
    assert len(hub.gets("model.safetensors")) == 2
    assert all(len(hub.gets(name)) == 1 for name in MODEL_FILES - {"model.safetensors"})


def test_missing_repo(hub):
    with pytest.raises(RepoNotFound) as info:
        pull_model("someone/does-not-exist")
    assert info.value.message == "model repo not found: someone/does-not-exist"
    assert info.value.hint


def test_gated_repo_needs_a_granted_hf_token(hub, tmp_path, monkeypatch):
    add_model(hub, tmp_path, repo="meta-llama/Gated-4bit", gated=True)
    hub.tokens.add("hf_granted")

    with pytest.raises(RepoAccessDenied) as info:
        pull_model("meta-llama/Gated-4bit")
    assert info.value.message == "access denied to meta-llama/Gated-4bit"
    assert "HF_TOKEN" in info.value.hint and "licence" in info.value.hint
    assert {r.headers.get("authorization") for r in hub.gets()} <= {None}

    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    with pytest.raises(RepoAccessDenied):  # 403 GatedRepo
        pull_model("meta-llama/Gated-4bit")

    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    path = pull_model("meta-llama/Gated-4bit")
    assert (path / "model.safetensors").is_file()
    assert hub.gets()[-1].headers["authorization"] == "Bearer hf_granted"


def test_gguf_only_repo_is_refused_with_an_import_hint(hub, tmp_path):
    src = tmp_path / "gguf"
    src.mkdir()
    (src / "README.md").write_text("# gguf")
    (src / "qwen2.5-coder-7b-instruct-q4_k_m.gguf").write_bytes(b"GGUF" + bytes(64))
    hub.add_repo("Qwen/Qwen2.5-Coder-7B-Instruct-GGUF", src)

    with pytest.raises(NotAnMlxModel) as info:
        pull_model("Qwen/Qwen2.5-Coder-7B-Instruct-GGUF")
    assert "GGUF" in info.value.message
    assert "mlxclaude models import FILE.gguf" in info.value.hint
    assert "qwen2.5-coder-7b-instruct-q4_k_m.gguf" in info.value.hint
    assert hub.gets() == []


def test_pytorch_only_repo_is_refused_with_an_import_hint(hub, tmp_path):
    src = tmp_path / "torch"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "llama"}')
    (src / "pytorch_model.bin").write_bytes(bytes(64))
    hub.add_repo("someone/torch-only", src)

    with pytest.raises(NotAnMlxModel) as info:
        pull_model("someone/torch-only")
    assert ".bin" in info.value.message
    assert "mlxclaude models import DIR" in info.value.hint and "mlx-community/" in info.value.hint
    assert hub.gets() == []


def test_unreachable_endpoint(hf_home, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")

    with pytest.raises(HubUnreachable) as info:
        pull_model(REPO)
    assert info.value.message == f"cannot reach the Hugging Face hub (HF_ENDPOINT=http://127.0.0.1:{port})"
    for offline in ("mlxclaude models list", "mlxclaude models import FILE.gguf", "ollama:", "lmstudio:"):
        assert offline in info.value.hint  # the ways that work with no hub


def test_offline_mode(hub, monkeypatch, tmp_path):
    add_model(hub, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachable) as info:
        pull_model(REPO)
    assert "HF_HUB_OFFLINE" in info.value.message and "mlxclaude models import FILE.gguf" in info.value.hint
    assert hub.requests == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mlx-community/Qwen2.5-0.5B-Instruct-4bit", ("mlx-community/Qwen2.5-0.5B-Instruct-4bit", None)),
        ("mlx-community/Qwen2.5-0.5B-Instruct-4bit@main", ("mlx-community/Qwen2.5-0.5B-Instruct-4bit", "main")),
        ("org/name@0123abcd", ("org/name", "0123abcd")),
        ("  org/name  ", ("org/name", None)),
        ("gpt2", ("gpt2", None)),
    ],
)
def test_split_repo_revision(text, expected):
    assert split_repo_revision(text) == expected


@pytest.mark.parametrize("text", ["", "org/", "/name", "a/b/c", "org/name@", "org name/x", "../x"])
def test_split_repo_revision_rejects_bad_input(text):
    with pytest.raises(UsageError):
        split_repo_revision(text)


def test_two_different_revisions_are_a_usage_error(hub):
    with pytest.raises(UsageError):
        pull_model("org/name@v1", "v2")


def test_ctrl_c_keeps_the_finished_files_and_a_second_pull_fetches_the_rest(hub, hf_home, tmp_path):
    """`models pull` interrupted on a slow link: exit 130 at once, finished files kept, the half-way file
    leaves nothing behind (huggingface_hub deletes its temporary file); pulling again fetches only that one."""
    import signal
    import time

    from support.cli_app import start_process

    add_model(hub, tmp_path, model={"weights_bytes": 3 * MiB})
    hub.throttle(REPO, "model.safetensors", 512 * 1024)  # 6 s for the weights
    blobs = hf_home / "hub" / "models--mlx-community--Tiny-Instruct-4bit" / "blobs"
    small = MODEL_FILES - {"model.safetensors"}

    proc = start_process("models", "pull", REPO, "--no-check")
    try:
        deadline = time.monotonic() + 60
        while not (len([p for p in blobs.glob("*") if not p.name.endswith(".incomplete")]) == len(small)
                   and any(p.stat().st_size > 0 for p in blobs.glob("*.incomplete"))):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.05)
        time.sleep(0.5)  # the files bar counts a file a moment after it lands on disk; the weights take 6 s
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert out == "" and "interrupted" in err and "again" in err
    assert f"{len(small)}/{len(MODEL_FILES)} files" in err
    assert list(blobs.glob("*.incomplete")) == []
    assert len(list(blobs.iterdir())) == len(small)  # the finished files, and not the weights: it stopped at once
    assert len(hub.gets("model.safetensors")) == 1

    hub.throttle(REPO, "model.safetensors", 0)
    path = pull_model(REPO)
    assert {p.name for p in path.iterdir()} == MODEL_FILES
    assert (path / "model.safetensors").read_bytes() == (tmp_path / "src" / REPO / "model.safetensors").read_bytes()
    assert all(len(hub.gets(name)) == 1 for name in small)  # kept, not fetched again
    again = hub.gets("model.safetensors")
    assert len(again) == 2 and "range" not in again[1].headers  # the half-way file starts over
