"""Which model to serve when none is configured: a local one if the choice is clear, else a recommendation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlxclaude.models.recommend import Recommendation, recommended_model


@dataclass(frozen=True)
class DefaultChoice:
    local_name: Optional[str]  # a model already on disk we can serve without asking
    recommendation: Recommendation


def default_model_choice() -> DefaultChoice:
    from mlxclaude.models.catalog import find_model, list_models

    recommendation = recommended_model()
    recommended_local = find_model(recommendation.repo)
    if recommended_local is not None:
        return DefaultChoice(recommended_local.name, recommendation)
    models = [model for model in list_models() if model.complete]
    if len(models) == 1 and _can_run_claude_code(models[0].path, models[0].name):
        return DefaultChoice(models[0].name, recommendation)
    return DefaultChoice(None, recommendation)


def _can_run_claude_code(path, name: str) -> bool:
    """Whether Claude Code's prompt fits the model's context (what `models check`, `up` and `run` decide): a
    model they would refuse is no default."""
    from mlxclaude.models.context_fit import fit_without_loading

    fit = fit_without_loading(path, name=name)
    return fit is None or fit.fits
