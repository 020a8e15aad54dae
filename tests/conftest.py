import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from real_models import smollm2_model_dir  # noqa: E402,F401  (SmolLM2-135M fixture)

# no example database and no constants cache in the checkout: the suite writes only under temporary directories
import os  # noqa: E402
import tempfile  # noqa: E402

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="mlxclaude-hypothesis-"))
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("mlxclaude", database=None)
hypothesis_settings.load_profile("mlxclaude")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from tiny_model import ensure_tiny_model

    return ensure_tiny_model()


KEEP_ENV = {"MLXCLAUDE_TEST_CACHE", "MLXCLAUDE_CLAUDE_BIN"}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own MLXCLAUDE_HOME and HF cache: a developer's config and models never leak in."""
    import os

    home = tmp_path_factory.mktemp("mlxclaude-home")
    for key in list(os.environ):
        if key.startswith("MLXCLAUDE_") and key not in KEEP_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLXCLAUDE_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home
