"""doctor's checks of config.toml's [backends], [routes] and [fallbacks]."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from mlxclaude import paths
from mlxclaude.doctor import Check, _guard, local_model_dir
from mlxclaude.errors import MlxClaudeError


def backend_checks(settings: Any, environ: Mapping[str, str], document: Optional[Mapping[str, Any]] = None
                   ) -> list[Check]:
    """When config.toml declares routing: a `routes` check (it parses, and what goes where), then one check per
    backend beyond `local` (an mlx model found locally; a remote one's key variable set and its model list
    answering). Nothing when config.toml has neither [backends] nor [routes], or did not load at all."""
    if settings is None:
        return []   # the config check has failed already, with the reason
    if document is None:
        from mlxclaude.config.toml import read_config

        document = read_config()
    if "backends" not in document and "routes" not in document:
        return []
    from mlxclaude.daemon.routes import load_routing
    from mlxclaude.routing.config import LOCAL

    try:
        config = load_routing(getattr(settings, "model", None), document)
    except MlxClaudeError as exc:
        return [Check("routes", "fail", exc.message, exc.hint or f"fix the tables in {paths.config_file()}")]
    routes = ", ".join(f"{pattern} → {backend}" for pattern, backend in config.routes)
    checks = [Check("routes", "ok", routes)]
    for name, spec in config.backends.items():
        if name != LOCAL:
            checks.append(_guard(f"backend {name}", lambda spec=spec: check_backend(spec, environ)))
    return checks


def check_backend(spec: Any, environ: Mapping[str, str], timeout: float = 5.0) -> Check:
    """One [backends.NAME]: an mlx model resolves as the main model does (local_model_dir); a remote backend
    has its key variable set (its value is never shown) and answers a model-list request."""
    name = f"backend {spec.name}"
    table = f"[backends.{spec.name}]"
    if spec.kind == "mlx":
        directory = local_model_dir(spec.model)
        if directory is None:
            from mlxclaude.models.resolve import is_repo_id

            fix = (f"mlxclaude models pull {spec.model}" if is_repo_id(spec.model)
                   else f"set model in {table} to a local mlx-lm directory or a Hugging Face repo id")
            return Check(name, "fail", f"mlx {spec.model}: not found locally", fix)
        return Check(name, "ok", f"mlx {spec.model} ({directory})")

    from mlxclaude.upstream.probe import probe_backend

    served = spec.deployment if spec.kind == "azure" else spec.model
    where = f"{spec.kind} {spec.url}" + (f" ({served})" if served else "")
    missing = spec.api_key_env if spec.api_key_env and not environ.get(spec.api_key_env) else None
    export = f"export {missing}=… in the shell that runs `mlxclaude up` (then `mlxclaude restart`)"
    reachable, why = probe_backend(spec, timeout=timeout)
    unset = f"; ${missing} is not set" if missing else ""
    if not reachable:
        if missing:
            fix = export
        elif "refused the key" in why:
            fix = f"check the key in ${spec.api_key_env}" if spec.api_key_env else f"set api_key_env in {table}"
        else:
            fix = f"check that {spec.url} is up and reachable from here (url in {table})"
        return Check(name, "fail", f"{where}: {why}{unset}", fix)
    if missing:
        return Check(name, "warn", f"{where}: {why}{unset}", export)
    return Check(name, "ok", f"{where}: {why}")
