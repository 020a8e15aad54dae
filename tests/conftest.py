import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

# no example database and no constants cache in the checkout: the suite writes only under temporary directories
import os  # noqa: E402
import tempfile  # noqa: E402

from real_models import smollm2_model_dir  # noqa: E402,F401  (SmolLM2-135M fixture)

from support import home  # noqa: E402

if "HYPOTHESIS_STORAGE_DIRECTORY" not in os.environ:
    import atexit  # noqa: E402
    import shutil  # noqa: E402

    _hypothesis_dir = tempfile.mkdtemp(prefix="mlxclaude-hypothesis-")
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = _hypothesis_dir
    atexit.register(shutil.rmtree, _hypothesis_dir, ignore_errors=True)  # gone with the run
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("mlxclaude", database=None)
hypothesis_settings.load_profile("mlxclaude")


def pytest_configure(config):
    """Before collection and before any fixture, the whole session moves into a temporary home: session- and
    module-scoped fixtures run before the function-scoped `isolated_home`. The real home is watched."""
    home.begin_session()


def pytest_sessionfinish(session, exitstatus):
    """The run fails if it wrote to the real home's mlxclaude, Claude Code or Hugging Face files."""
    changes = home.real_home_changes()
    if not changes:
        return
    title = "the suite wrote outside its temporary directories"
    lines = changes[:20] + ([f"... and {len(changes) - 20} more"] if len(changes) > 20 else [])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.ensure_newline()
        reporter.write_sep("!", title, red=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print(title, *lines, sep="\n", file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    home.end_session()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from tiny_model import ensure_tiny_model

    return ensure_tiny_model()


@pytest.fixture(scope="session")
def tiny_hybrid_dir() -> Path:
    """A tiny random linear-attention hybrid (Qwen3.5's layout) whose caches cannot be cut back (tests/tiny_hybrid.py)."""
    from tiny_hybrid import ensure_tiny_hybrid

    return ensure_tiny_hybrid()


@pytest.fixture(scope="session")
def tiny_vlm_dir() -> Path:
    """A tiny random Qwen2-VL that mlx-vlm loads (tests/tiny_vlm.py)."""
    from tiny_vlm import ensure_tiny_vlm

    return ensure_tiny_vlm()


@pytest.fixture(scope="module", autouse=True)
def module_home(tmp_path_factory):
    """Each module's own home for its module-scoped fixtures (a live server's prompt-cache files, say)."""
    with pytest.MonkeyPatch.context() as patch:
        yield home.isolate(patch, tmp_path_factory.mktemp("module-home"))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own MLXCLAUDE_HOME, HOME, XDG directories and HF cache: a developer's config and
    models never leak in, and nothing the test writes leaks out."""
    return home.isolate(monkeypatch, tmp_path_factory.mktemp("mlxclaude-home"))
