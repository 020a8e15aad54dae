"""What a failed pull means, in one line with a hint: the errors models/hub.py raises, and the classification of
huggingface_hub's and the transport's exceptions into them."""

from __future__ import annotations

import sys
from urllib.parse import unquote

from mlxclaude.errors import MlxClaudeError

# what works with no hub at all, said wherever the hub cannot be reached
OFFLINE_WAYS = ("use a model already here (`mlxclaude models list`), a local mlx-lm directory, or import one: "
                "`mlxclaude models import FILE.gguf`, `ollama:NAME` or `lmstudio:NAME`")


class HubError(MlxClaudeError):
    """A pull failed; the message is one line, the hint says what to do."""


class RepoNotFound(HubError):
    pass


class RepoAccessDenied(HubError):
    pass


class RevisionNotFound(HubError):
    pass


class HubUnreachable(HubError):
    pass


class NotAnMlxModel(HubError):
    pass


class DownloadFailed(HubError):
    pass


def hub_error(exc: BaseException, repo: str, revision: str | None, endpoint: str, *, downloading: bool = False) -> MlxClaudeError:
    """Turn a huggingface_hub / transport exception into a one-line MlxClaudeError with a hint."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, MlxClaudeError):
        return exc
    if isinstance(exc, GatedRepoError) or (
        isinstance(exc, HfHubHTTPError)
        and not isinstance(exc, RepositoryNotFoundError)
        and _status(exc) in (401, 403)
    ):
        return RepoAccessDenied(
            f"access denied to {repo}",
            hint=f"accept the model's licence at {endpoint}/{repo}, then set HF_TOKEN to a token of that "
            "account (or run `hf auth login`)",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return RepoNotFound(
            f"model repo not found: {repo}",
            hint="check the spelling (ORG/NAME); a private repo also needs HF_TOKEN",
        )
    if isinstance(exc, RevisionNotFoundError):
        return RevisionNotFound(
            f"revision not found: {repo}@{revision}",
            hint=f"use a branch, tag or commit of {repo} (the default is main)",
        )
    if isinstance(exc, OfflineModeIsEnabled):
        return HubUnreachable(
            "cannot reach the Hugging Face hub (HF_HUB_OFFLINE is set)",
            hint="unset HF_HUB_OFFLINE to download, or " + OFFLINE_WAYS,
        )
    if _is_connect_error(exc) or (not downloading and _is_transport_error(exc)) or (
        isinstance(exc, LocalEntryNotFoundError) and not isinstance(exc.__cause__, HfHubHTTPError)
    ):
        return HubUnreachable(
            f"cannot reach the Hugging Face hub (HF_ENDPOINT={endpoint})",
            hint="check the network or proxy (or set HF_ENDPOINT to a reachable mirror), or " + OFFLINE_WAYS,
        )
    if isinstance(exc, HfHubHTTPError) and not downloading:
        return HubError(
            f"the Hugging Face hub answered {_status(exc) or 'an error'} for {repo}",
            hint="try again later",
        )
    if isinstance(exc, LocalEntryNotFoundError) and isinstance(exc.__cause__, HfHubHTTPError):
        exc = exc.__cause__
    status = _status(exc)
    reason = f"HTTP {status} for {_url_file(exc) or 'a file'}" if status else _first_line(exc)
    return DownloadFailed(
        f"download of {repo} failed: {reason}",
        hint="run the same pull again: files already downloaded are kept",
    )


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _url_file(exc: BaseException) -> str | None:
    """The file name in a /resolve/REV/FILE url of the failed request."""
    request = getattr(getattr(exc, "response", None), "request", None)
    path = str(getattr(request, "url", "") or "")
    _, sep, rest = path.partition("/resolve/")
    if not sep:
        return None
    return unquote(rest.partition("/")[2]) or None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _transport_types(*names: str) -> tuple[type, ...]:
    """Classes from whichever HTTP client huggingface_hub uses (httpx2 in 2.x, httpx in 1.x, requests
    before); only modules already imported are consulted, so nothing is imported here."""
    found: list[type] = []
    for module_name in ("httpx2", "httpx", "requests.exceptions"):
        module = sys.modules.get(module_name)
        for name in names:
            cls = getattr(module, name, None) if module else None
            if isinstance(cls, type):
                found.append(cls)
    return tuple(found)


def _is_connect_error(exc: BaseException) -> bool:
    types = _transport_types("ConnectError", "ConnectTimeout", "ProxyError", "ConnectionError") + (ConnectionRefusedError,)
    return any(isinstance(item, types) for item in _chain(exc))


def _is_transport_error(exc: BaseException) -> bool:
    types = _transport_types("TransportError", "RequestException") + (ConnectionError, TimeoutError)
    return any(isinstance(item, types) for item in _chain(exc))
