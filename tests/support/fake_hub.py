"""A loopback stand-in for the Hugging Face hub's file API, enough for huggingface_hub's
`model_info`, `snapshot_download` and `hf_hub_download` with HF_ENDPOINT (or `endpoint=`) set to it.

Endpoints (as huggingface_hub 2.x calls them):
  GET  /api/models/{repo}[/revision/{rev}]      id, sha, siblings (sizes with ?blobs=true), gated
  GET  /api/models/{repo}/tree/{rev}[/{path}]   recursive file listing (type, oid, size, path, lfs)
  HEAD /{repo}/resolve/{rev}/{file}             ETag, X-Repo-Commit, Content-Length
  GET  /{repo}/resolve/{rev}/{file}             the bytes; honours Range (206 + Content-Range)
Errors carry X-Error-Code as the hub does: RepoNotFound (404), RevisionNotFound (404),
EntryNotFound (404), GatedRepo (401 without a token, 403 with a token that was not granted).

Faults for tests: `cut_after(file, n)` sends the full Content-Length but only n bytes and then drops
the connection; `fail(file, status)` answers a GET with an error status; `throttle(file, rate)` sends a
file's bytes at about `rate` bytes a second (a slow link). Every request is recorded. Tests only.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".model")

_API_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_API_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


@dataclass(frozen=True)
class HubFile:
    path: str
    data: bytes
    lfs: bool

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile]
    sha: str
    refs: dict[str, str]
    gated: bool = False


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def filename(self) -> str | None:
        match = _RESOLVE.match(self.path)
        return unquote(match["file"]) if match else None


@dataclass
class _Fault:
    kind: str  # "cut" | "status"
    value: int
    times: int


@dataclass
class FakeHub:
    host: str = "127.0.0.1"
    repos: dict[str, HubRepo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)  # tokens granted access to gated repos

    def __post_init__(self) -> None:
        self._faults: dict[tuple[str, str], list[_Fault]] = {}
        self._rates: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up -------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, directory: Path | str, *, gated: bool = False, refs: tuple[str, ...] = ("main",)) -> str:
        """Serve every file under DIRECTORY as REPO_ID; return the commit sha (also under each ref)."""
        root = Path(directory)
        files = {}
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = file.relative_to(root).as_posix()
            files[rel] = HubFile(rel, file.read_bytes(), lfs=rel.endswith(LFS_SUFFIXES))
        digest = hashlib.sha1(repo_id.encode())
        for rel, file in files.items():
            digest.update(rel.encode() + b"\0" + file.git_oid.encode())
        sha = digest.hexdigest()
        self.repos[repo_id] = HubRepo(repo_id, files, sha, {ref: sha for ref in refs}, gated=gated)
        return sha

    def cut_after(self, repo_id: str, filename: str, nbytes: int, *, times: int = 1) -> None:
        self._faults.setdefault((repo_id, filename), []).append(_Fault("cut", nbytes, times))

    def fail(self, repo_id: str, filename: str, status: int = 500, *, times: int = 1) -> None:
        self._faults.setdefault((repo_id, filename), []).append(_Fault("status", status, times))

    def throttle(self, repo_id: str, filename: str, bytes_per_second: float) -> None:
        """Send FILENAME's bytes at about BYTES_PER_SECOND (16 KiB at a time) from now on; 0 for full speed."""
        self._rates[(repo_id, filename)] = bytes_per_second

    def gets(self, filename: str | None = None) -> list[Request]:
        """GET requests for files (optionally one file), in order."""
        return [r for r in self.requests if r.method == "GET" and r.filename and (filename is None or r.filename == filename)]

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "FakeHub not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "FakeHub":
        self._server = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------
    def _take_fault(self, repo_id: str, filename: str) -> _Fault | None:
        with self._lock:
            faults = self._faults.get((repo_id, filename)) or []
            for fault in faults:
                if fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        # -- routing ------------------------------------------------------------------------
        def _route(self, *, head: bool) -> None:
            url = urlsplit(self.path)
            hub._record(Request(self.command, url.path, {k.lower(): v for k, v in self.headers.items()}))
            query = parse_qs(url.query)
            if match := _API_TREE.match(url.path):
                return self._tree(unquote(match["repo"]), unquote(match["rev"]), unquote(match["path"] or ""))
            if match := _API_INFO.match(url.path):
                return self._info(unquote(match["repo"]), unquote(match["rev"] or "main"), query)
            if match := _RESOLVE.match(url.path):
                return self._resolve(unquote(match["repo"]), unquote(match["rev"]), unquote(match["file"]), head=head)
            self._error(404, "Not Found", None)

        def _repo_and_sha(self, repo_id: str, rev: str) -> tuple[HubRepo, str] | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "Repository not found", "RepoNotFound")
                return None
            sha = repo.refs.get(rev) or (rev if rev == repo.sha else None)
            if sha is None:
                self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound", commit=None)
                return None
            return repo, sha

        def _info(self, repo_id: str, rev: str, query: dict[str, list[str]]) -> None:
            found = self._repo_and_sha(repo_id, rev)
            if found is None:
                return
            repo, sha = found
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            siblings = []
            for file in repo.files.values():
                sibling: dict[str, Any] = {"rfilename": file.path}
                if blobs:
                    sibling.update(size=len(file.data), blobId=file.git_oid)
                    if file.lfs:
                        sibling["lfs"] = {"sha256": file.sha256, "size": len(file.data), "pointerSize": 134}
                siblings.append(sibling)
            body = {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "private": False,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "tags": ["mlx", "safetensors"],
                "library_name": "mlx",
                "siblings": siblings,
                "lastModified": "2025-01-01T00:00:00.000Z",
                "createdAt": "2025-01-01T00:00:00.000Z",
            }
            self._json(200, body, commit=sha)

        def _tree(self, repo_id: str, rev: str, path: str) -> None:
            found = self._repo_and_sha(repo_id, rev)
            if found is None:
                return
            repo, sha = found
            prefix = path.rstrip("/") + "/" if path else ""
            entries = []
            for file in repo.files.values():
                if not file.path.startswith(prefix):
                    continue
                entry: dict[str, Any] = {"type": "file", "oid": file.git_oid, "size": len(file.data), "path": file.path}
                if file.lfs:
                    entry["lfs"] = {"oid": file.sha256, "size": len(file.data), "pointerSize": 134}
                entries.append(entry)
            self._json(200, entries, commit=sha)

        def _resolve(self, repo_id: str, rev: str, filename: str, *, head: bool) -> None:
            found = self._repo_and_sha(repo_id, rev)
            if found is None:
                return
            repo, sha = found
            if repo.gated and not self._authorised():
                status = 403 if self.headers.get("Authorization") else 401
                self._error(status, f"Access to model {repo_id} is restricted.", "GatedRepo", commit=sha)
                return
            file = repo.files.get(filename)
            if file is None:
                self._error(404, "Entry not found", "EntryNotFound", commit=sha)
                return
            headers = {"ETag": f'"{file.etag}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
            if head:
                self._send(200, headers, length=len(file.data))
                return
            fault = hub._take_fault(repo_id, filename)
            if fault is not None and fault.kind == "status":
                self._error(fault.value, "Injected failure", None, commit=sha)
                return
            start = self._range_start(len(file.data))
            data = file.data[start:]
            status = 200
            if start:
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(file.data) - 1}/{len(file.data)}"
            self._send(status, headers, length=len(data))
            if fault is not None and fault.kind == "cut":
                self._cut(data[: fault.value])
                return
            rate = hub._rates.get((repo_id, filename))
            if rate:
                self._trickle(data, rate)
                return
            self.wfile.write(data)

        # -- helpers ------------------------------------------------------------------------
        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization") or ""
            return auth.startswith("Bearer ") and auth[len("Bearer "):] in hub.tokens

        def _range_start(self, size: int) -> int:
            value = self.headers.get("Range")
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", value or "")
            if not match:
                return 0
            return min(int(match[1]), size)

        def _trickle(self, data: bytes, rate: float, piece: int = 16 * 1024) -> None:
            try:
                for start in range(0, len(data), piece):
                    self.wfile.write(data[start:start + piece])
                    self.wfile.flush()
                    time.sleep(min(piece, len(data) - start) / rate)
            except OSError:  # the client went away (an interrupted download)
                self.close_connection = True

        def _cut(self, partial: bytes) -> None:
            self.wfile.write(partial)
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _send(self, status: int, headers: dict[str, str], *, length: int, content_type: str = "application/octet-stream") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(length))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()

        def _json(self, status: int, body: Any, *, commit: str | None = None, extra: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            headers = dict(extra or {})
            if commit:
                headers["X-Repo-Commit"] = commit
            self._send(status, headers, length=len(data), content_type="application/json")
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, message: str, code: str | None, *, commit: str | None = None) -> None:
            extra = {"X-Error-Message": message}
            if code:
                extra["X-Error-Code"] = code
            self._json(status, {"error": message}, commit=commit, extra=extra)

    return Handler


# -- model directories for tests --------------------------------------------------------------

HERMES_TEMPLATE = (
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endfor %}"
    "{%- if tools %}<tools>{{ tools | tojson }}</tools> Return calls as "
    "<tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>{%- endif %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)
THINKING_TEMPLATE = HERMES_TEMPLATE + "{%- if enable_thinking %}<think>\n{%- endif %}"


def safetensors_bytes(nbytes: int, *, name: str = "model.embed_tokens.weight", seed: int = 0) -> bytes:
    """A valid safetensors file holding one U8 tensor of NBYTES pseudo-random bytes."""
    header = json.dumps({name: {"dtype": "U8", "shape": [nbytes], "data_offsets": [0, nbytes]}}).encode()
    header += b" " * (-len(header) % 8)
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    payload = (block * (nbytes // len(block) + 1))[:nbytes]
    return struct.pack("<Q", len(header)) + header + payload


def write_model_dir(
    directory: Path | str,
    *,
    weights_bytes: int = 4096,
    quant_bits: int | None = 4,
    dtype: str = "bfloat16",
    chat_template: str | None = HERMES_TEMPLATE,
    template_in_jinja: bool = False,
    context_length: int = 32768,
    model_type: str = "qwen2",
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a small mlx-lm-shaped model directory (not loadable: the weights are filler)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "model_type": model_type,
        "architectures": ["Qwen2ForCausalLM"],
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "max_position_embeddings": context_length,
        "torch_dtype": dtype,
    }
    if quant_bits:
        config["quantization"] = {"group_size": 64, "bits": quant_bits}
        config["quantization_config"] = {"group_size": 64, "bits": quant_bits}
    (root / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer_config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>"}
    if chat_template and not template_in_jinja:
        tokenizer_config["chat_template"] = chat_template
    if chat_template and template_in_jinja:
        (root / "chat_template.jinja").write_text(chat_template)
    (root / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}}))
    (root / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    (root / "merges.txt").write_text("#version: 0.2\n")
    (root / "model.safetensors").write_bytes(safetensors_bytes(weights_bytes))
    for name, data in (extra_files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
