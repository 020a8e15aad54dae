import tomllib

import pytest

from mlxclaude.errors import UsageError
from mlxclaude.routing.config import LOCAL, BackendSpec, RoutingConfig, parse_routing

LOCAL_MODEL = "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit"

ISSUE_TOML = '''
model = "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit"

[backends.small]            # another local MLX model, loaded on first use, unloaded after keep_alive
kind = "mlx"
model = "mlx-community/Qwen3-4B-Instruct-2507-4bit"
keep_alive = "10m"

[backends.gpu]              # an OpenAI-compatible engine: vLLM, SGLang, llama.cpp server, Ollama, LM Studio, mlx_lm.server
kind = "openai"
url = "http://gpu-box:8000/v1"
model = "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8"
api_key_env = "GPU_API_KEY"

[backends.azure]            # Azure OpenAI: deployment + api-version + api-key header
kind = "azure"
url = "https://NAME.openai.azure.com"
deployment = "gpt-4o"
api_version = "2024-10-21"
api_key_env = "AZURE_API_KEY"

[backends.remote]           # an Anthropic-compatible server (vLLM / llama.cpp /v1/messages, or Anthropic itself)
kind = "anthropic"
url = "https://…"
api_key_env = "REMOTE_KEY"

[routes]                    # Claude Code's model id -> backend; glob patterns, most specific first; "*" is the default
"*haiku*" = "small"
"*opus*" = "gpu"
"*" = "local"

[fallbacks]                 # on connection failure, timeout, 429/5xx/529 before the first byte: try the next
gpu = ["local"]
'''


def parse(text: str, local_model: str | None = LOCAL_MODEL) -> RoutingConfig:
    return parse_routing(tomllib.loads(text), local_model=local_model)


def error(text: str) -> UsageError:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert caught.value.hint, "every routing error says what to do"
    return caught.value


def test_the_issue_example():
    config = parse(ISSUE_TOML)
    assert config.configured
    assert list(config.backends) == ["local", "small", "gpu", "azure", "remote"]
    assert config.backends["local"] == BackendSpec(name="local", kind="mlx", model=LOCAL_MODEL)
    assert config.backends["small"] == BackendSpec(
        name="small", kind="mlx", model="mlx-community/Qwen3-4B-Instruct-2507-4bit", keep_alive_s=600.0)
    assert config.backends["gpu"] == BackendSpec(
        name="gpu", kind="openai", url="http://gpu-box:8000/v1", model="Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",
        api_key_env="GPU_API_KEY")
    assert config.backends["azure"] == BackendSpec(
        name="azure", kind="azure", url="https://NAME.openai.azure.com", deployment="gpt-4o",
        api_version="2024-10-21", api_key_env="AZURE_API_KEY")
    assert config.backends["remote"] == BackendSpec(name="remote", kind="anthropic", url="https://…",
                                                    api_key_env="REMOTE_KEY")
    assert config.routes == (("*haiku*", "small"), ("*opus*", "gpu"), ("*", "local"))
    assert dict(config.fallbacks) == {"gpu": ("local",)}


def test_no_routing_tables_means_everything_goes_to_local():
    for document in ({}, {"model": "m", "port": 9000}):
        config = parse_routing(document, local_model="m")
        assert not config.configured
        assert config.routes == (("*", LOCAL),)
        assert dict(config.backends) == {LOCAL: BackendSpec(name=LOCAL, kind="mlx", model="m")}
        assert dict(config.fallbacks) == {}
    assert parse_routing({}, local_model=None).backends[LOCAL].model is None


def test_an_empty_routes_or_backends_table_still_counts_as_configured():
    assert parse("[routes]\n").configured
    assert parse("[backends]\n").configured
    assert parse("[routes]\n").routes == (("*", LOCAL),)


def test_without_a_star_route_the_default_stays_local():
    config = parse('[backends.gpu]\nkind = "openai"\nurl = "http://h/v1"\n[routes]\n"*opus*" = "gpu"\n')
    assert config.routes == (("*opus*", "gpu"), ("*", LOCAL))


def test_a_star_route_may_send_everything_elsewhere():
    config = parse('[backends.gpu]\nkind = "openai"\nurl = "http://h/v1"\n[routes]\n"*" = "gpu"\n')
    assert config.routes == (("*", "gpu"),)


def test_defaults_and_options():
    config = parse('''
[backends.gpu]
kind = "openai"
url = "http://gpu-box:8000/v1/"
timeout = "2m"
drop_params = ["top_k", "thinking", "top_k"]
cooldown = 45
cooldown_after = 5
[backends.az]
kind = "azure"
url = "https://x.openai.azure.com"
deployment = "d"
[backends.small]
kind = "mlx"
model = "/models/small"
keep_alive = 90
''')
    gpu, az, small = config.backends["gpu"], config.backends["az"], config.backends["small"]
    assert gpu.url == "http://gpu-box:8000/v1" and gpu.model is None and gpu.api_key_env is None
    assert (gpu.timeout_s, gpu.drop_params, gpu.cooldown_s, gpu.cooldown_after) == (120.0, ("top_k", "thinking"), 45.0, 5)
    assert gpu.keep_alive_s is None
    assert az.api_version == "2024-10-21" and az.deployment == "d"
    assert small.keep_alive_s == 90.0 and small.timeout_s == 600.0
    assert (small.cooldown_s, small.cooldown_after, small.drop_params) == (30.0, 2, ())
    assert config.backends[LOCAL].keep_alive_s is None


def test_fallback_cycles_are_allowed():
    config = parse('[backends.a]\nkind = "openai"\nurl = "http://a/v1"\n'
                   '[fallbacks]\na = ["local"]\nlocal = ["a"]\n')
    assert dict(config.fallbacks) == {"a": ("local",), "local": ("a",)}


@pytest.mark.parametrize("text, message, hint", [
    ('[backends.x]\nkind = "vllm"\nurl = "http://h"\n', '[backends.x]: unknown kind \'vllm\'',
     '"mlx", "openai", "azure", "anthropic"'),
    ('[backends.x]\nurl = "http://h"\n', "[backends.x]: kind is required", '"openai"'),
    ('[backends.x]\nkind = "openai"\nurl = "http://h"\napi_key_envv = "K"\n',
     "[backends.x]: unknown key 'api_key_envv'", "did you mean 'api_key_env'?"),
    ('[backends.x]\nkind = "openai"\nurl = "http://h"\ncolour = "blue"\n', "[backends.x]: unknown key 'colour'",
     "takes: url, model, api_key_env"),
    ('[backends.x]\nkind = "openai"\nurl = "http://h"\ndeployment = "d"\n',
     '[backends.x]: deployment does not apply to kind "openai" (only to "azure")', "remove it"),
    ('[backends.local]\nkind = "mlx"\nmodel = "m"\n', "[backends.local]: `local` is the built-in backend",
     "top-level `model"),
    ('[backends.gpu]\nkind = "openai"\n', '[backends.gpu]: url is required for kind "openai"', 'url = "http://'),
    ('[backends.az]\nkind = "azure"\nurl = "https://a"\n', '[backends.az]: deployment is required for kind "azure"',
     "deployment = "),
    ('[backends.s]\nkind = "mlx"\n', '[backends.s]: model is required for kind "mlx"', "model = "),
    ('[backends.s]\nkind = "mlx"\nmodel = ""\n', "[backends.s]: model must be a non-empty string", "model = "),
    ('[backends.gpu]\nkind = "openai"\nurl = "gpu-box:8000/v1"\n',
     "[backends.gpu]: url must start with http:// or https://, got 'gpu-box:8000/v1'", "http://gpu-box:8000/v1"),
    ('[backends.gpu]\nkind = "openai"\nurl = "ftp://h"\n', "url must start with http:// or https://", "url = "),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\napi_key_env = "sk-abc123"\n',
     "[backends.gpu]: api_key_env must be the NAME of an environment variable, not the key",
     'api_key_env = "GPU_API_KEY"'),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\napi_key_env = "abc.def/ghi=="\n',
     "api_key_env must be the NAME", "never holds the key"),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\nkeep_alive = "10m"\n',
     '[backends.gpu]: keep_alive applies only to kind "mlx"', "remove keep_alive"),
    ('[backends.s]\nkind = "mlx"\nmodel = "m"\nkeep_alive = "ten minutes"\n',
     "[backends.s]: invalid keep_alive 'ten minutes'", '"10m"'),
    ('[backends.s]\nkind = "mlx"\nmodel = "m"\nkeep_alive = -5\n', "[backends.s]: invalid keep_alive -5", '"1h30m"'),
    ('[backends.g]\nkind = "openai"\nurl = "http://h"\ntimeout = "0s"\n', "[backends.g]: timeout must be more than 0",
     '"90s"'),
    ('[backends.g]\nkind = "openai"\nurl = "http://h"\ncooldown = "soon"\n', "[backends.g]: invalid cooldown 'soon'",
     "duration"),
    ('[backends.g]\nkind = "openai"\nurl = "http://h"\ncooldown_after = 0\n',
     "[backends.g]: cooldown_after must be a whole number of failures, at least 1", "cooldown_after = 2"),
    ('[backends.g]\nkind = "openai"\nurl = "http://h"\ndrop_params = "top_k"\n',
     "[backends.g]: drop_params must be a list of parameter names", 'drop_params = ["top_k"'),
    ('[routes]\n"*haiku*" = "small"\n', "[routes] \"*haiku*\": no backend named 'small'", "backends: local"),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\n[routes]\n"*opus*" = "gpuu"\n',
     "[routes] \"*opus*\": no backend named 'gpuu'", "did you mean 'gpu'? backends: local, gpu"),
    ('[routes]\n"*" = 3\n', '[routes] "*": expected a backend name, got a number', '"*" = "NAME"'),
    ('[routes]\n"" = "local"\n', "[routes] \"\": a route needs a pattern", '"*haiku*"'),
    ('[fallbacks]\ngpu = ["local"]\n', "[fallbacks]: no backend named 'gpu'", "backends: local"),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\n[fallbacks]\ngpu = ["lokal"]\n',
     "[fallbacks] gpu: no backend named 'lokal'", "did you mean 'local'?"),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\n[fallbacks]\ngpu = ["local", "gpu"]\n',
     "[fallbacks] gpu: gpu cannot fall back to itself", "list other backends: local"),
    ('[backends.gpu]\nkind = "openai"\nurl = "http://h"\n[fallbacks]\ngpu = "local"\n',
     "[fallbacks] gpu: expected a list of backend names, got a string", 'gpu = ["NAME", …]'),
    ('routes = "local"\n', "[routes] must be a table, got a string", "[routes] section"),
    ('backends = 1\n', "[backends] must be a table, got a number", "[backends] section"),
    ('[backends]\ngpu = "openai"\n', "[backends]: gpu must be a table, got a string", "[backends.gpu]"),
])
def test_errors_name_the_table_and_key_and_say_what_to_do(text, message, hint):
    caught = error(text)
    assert message in caught.message
    assert hint in caught.hint


def test_the_key_itself_never_appears_in_the_error():
    caught = error('[backends.gpu]\nkind = "openai"\nurl = "http://h"\napi_key_env = "sk-secret-value"\n')
    assert "sk-secret-value" not in caught.message + caught.hint


def test_env_var_names_are_accepted():
    for name in ("GPU_API_KEY", "key", "_K1"):
        spec = parse(f'[backends.g]\nkind = "openai"\nurl = "https://h"\napi_key_env = "{name}"\n').backends["g"]
        assert spec.api_key_env == name


def test_uses_local_says_whether_any_route_or_fallback_reaches_the_top_level_model():
    import tomllib

    remote = '[backends.gpu]\nkind = "openai"\nurl = "http://gpu:8000/v1"\n[routes]\n"*" = "gpu"\n'
    assert not parse_routing(tomllib.loads(remote), local_model=None).uses_local
    assert parse_routing(tomllib.loads(remote + '[fallbacks]\ngpu = ["local"]\n'), local_model=None).uses_local
    assert parse_routing(tomllib.loads(remote.replace('"*" = "gpu"', '"*haiku*" = "gpu"')), local_model=None).uses_local
    assert parse_routing({}, local_model=None).uses_local  # no routes: everything goes to `local`
