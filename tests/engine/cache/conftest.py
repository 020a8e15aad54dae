import pytest


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from mlx_lm import load

    return load(str(tiny_model_dir))
