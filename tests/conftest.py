import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from tiny_model import ensure_tiny_model

    return ensure_tiny_model()
