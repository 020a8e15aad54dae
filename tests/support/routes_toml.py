"""The issue's config.toml routes, for tests: a main model, a second local model `small`, an OpenAI-compatible
`gpu`, haiku → small, opus → gpu, the rest local, gpu falling back to local."""

from __future__ import annotations


def routes_toml(*, main: str, small: str, gpu_url: str, gpu_model: str = "big-model") -> str:
    return f'''model = "{main}"
[backends.small]
kind = "mlx"
model = "{small}"
keep_alive = "10m"
[backends.gpu]
kind = "openai"
url = "{gpu_url}"
model = "{gpu_model}"
api_key_env = "GPU_API_KEY"
[routes]
"*haiku*" = "small"
"*opus*" = "gpu"
"*" = "local"
[fallbacks]
gpu = ["local"]
'''
