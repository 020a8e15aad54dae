"""Settings: the registry, precedence (default < config.toml < env < flag), config.toml I/O, `config` commands."""

from __future__ import annotations

import json
import math
import re
import stat
import tomllib

import pytest

from mlxclaude import paths
from mlxclaude.config.load import load_settings, set_config_value, unset_config_value
from mlxclaude.config.registry import REGISTRY, SETTINGS, ServerSettings, lookup, settings_markdown
from mlxclaude.config.token import local_token
from mlxclaude.config.toml import dumps_toml, read_config, write_config
from mlxclaude.config.units import parse_bytes
from mlxclaude.errors import MlxClaudeError, UsageError
from support.cli_app import run_cli


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "home"))
    for name in list(__import__("os").environ):
        if name.startswith("MLXCLAUDE_") and name != "MLXCLAUDE_HOME":
            monkeypatch.delenv(name)
    return tmp_path / "home"


def write_toml(text: str):
    path = paths.config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- the registry ----------------------------------------------------------------------------------


def test_registry_lists_every_server_setting_with_its_default():
    defaults = ServerSettings()
    assert list(REGISTRY) == [field for field in defaults.__dataclass_fields__]
    for setting in SETTINGS:
        assert getattr(defaults, setting.name) == setting.default
        assert setting.env == "MLXCLAUDE_" + setting.name.upper()
        assert setting.description.endswith(".")


def test_readme_table_comes_from_the_registry():
    table = settings_markdown()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in table and f"`{setting.name}`" in table
    assert "MLXCLAUDE_HOME" in table
    for line in table.splitlines():
        assert len(re.findall(r"(?<!\\)\|", line)) == 6, f"a stray | splits a row: {line}"


# --- precedence ------------------------------------------------------------------------------------

PRECEDENCE = [
    # config.toml, env, flag -> port, source
    (None, None, None, 8765, "default"),
    (9001, None, None, 9001, "config"),
    (None, "9002", None, 9002, "env"),
    (9001, "9002", None, 9002, "env"),
    (9001, None, 9003, 9003, "flag"),
    (None, "9002", 9003, 9003, "flag"),
    (9001, "9002", 9003, 9003, "flag"),
]


@pytest.mark.parametrize("toml_port, env_port, flag_port, expected, source", PRECEDENCE)
def test_precedence_default_toml_env_flag(toml_port, env_port, flag_port, expected, source):
    if toml_port is not None:
        write_toml(f"port = {toml_port}\n")
    environ = {"MLXCLAUDE_PORT": env_port} if env_port else {}
    resolved = load_settings(environ, overrides={"port": flag_port})
    assert resolved.settings.port == expected
    assert resolved.sources["port"] == source
    assert ServerSettings.from_env(environ, port=flag_port).port == expected


def test_layers_mix_per_setting():
    write_toml('model = "org/from-toml"\nmax_queue = 4\nmax_tokens_policy = "error"\n')
    resolved = load_settings({"MLXCLAUDE_MAX_QUEUE": "8", "MLXCLAUDE_PING_INTERVAL": "2.5"},
                             overrides={"model": "org/from-flag", "host": None})
    settings = resolved.settings
    assert (settings.model, settings.max_queue, settings.max_tokens_policy, settings.ping_interval) == \
        ("org/from-flag", 8, "error", 2.5)
    assert settings.host == "127.0.0.1"
    assert resolved.sources == {**{s.name: "default" for s in SETTINGS}, "model": "flag", "max_queue": "env",
                                "max_tokens_policy": "config", "ping_interval": "env"}


def test_from_env_keeps_its_old_contract():
    settings = ServerSettings.from_env({"MLXCLAUDE_CONTEXT_LIMIT": "32_768", "MLXCLAUDE_MODEL": ""},
                                       model=None, port=1234)
    assert settings.context_limit == 32768 and settings.model is None and settings.port == 1234
    assert isinstance(settings, ServerSettings)
    assert ServerSettings.from_env({}, model=paths.config_dir()).model == str(paths.config_dir())


def test_cache_max_bytes_takes_sizes():
    write_toml('cache_max_bytes = "8GiB"\n')
    assert ServerSettings.from_env({}).cache_max_bytes == 8 * 1024**3
    assert ServerSettings.from_env({"MLXCLAUDE_CACHE_MAX_BYTES": "auto"}).cache_max_bytes is None
    assert parse_bytes("512MB") == 512_000_000 and parse_bytes("1.5G") == int(1.5 * 1024**3)
    assert parse_bytes(1024) == 1024
    with pytest.raises(ValueError):
        parse_bytes("lots")


# --- bad input -------------------------------------------------------------------------------------


def test_malformed_toml_names_the_file_and_line():
    path = write_toml('model = "ok"\nport = = 3\n')
    with pytest.raises(MlxClaudeError) as caught:
        load_settings({})
    assert str(path) in caught.value.message and "line 2" in caught.value.message


def test_invalid_toml_value_names_the_file_and_key():
    path = write_toml('port = "eighty"\n')
    with pytest.raises(MlxClaudeError) as caught:
        load_settings({})
    assert str(path) in caught.value.message and "port" in caught.value.message
    assert "config set port" in caught.value.hint


def test_unknown_toml_key_warns_and_is_ignored(capsys):
    write_toml("prot = 9000\nport = 9001\n")
    assert load_settings({}).settings.port == 9001
    err = capsys.readouterr().err
    assert "warning:" in err and "unknown setting 'prot'" in err and "did you mean port" in err


def test_invalid_env_value_warns_and_falls_back(capsys):
    write_toml("port = 9001\n")
    resolved = load_settings({"MLXCLAUDE_PORT": "lots", "MLXCLAUDE_MAX_TOKENS_POLICY": "maybe"})
    assert resolved.settings.port == 9001 and resolved.sources["port"] == "config"
    assert resolved.settings.max_tokens_policy == "clamp"
    err = capsys.readouterr().err
    assert "MLXCLAUDE_PORT='lots' ignored" in err and "clamp, error" in err


def test_invalid_flag_is_a_usage_error():
    with pytest.raises(UsageError):
        load_settings({}, overrides={"port": 70000})


def test_lookup_suggests_close_names():
    assert lookup("max-queue").name == "max_queue"
    assert lookup("MLXCLAUDE_PORT").name == "port"
    with pytest.raises(UsageError) as caught:
        lookup("max_qeue")
    assert "did you mean max_queue" in caught.value.message


# --- the TOML writer -------------------------------------------------------------------------------


def test_writer_round_trips_flat_scalars():
    values = {"s": 'quote " back \\ tab \t nl \n ctl \x01 é ✓', "empty": "", "i": -42, "big": 2**62,
              "f": 0.1, "e": 1e300, "neg": -2.5, "inf": math.inf, "t": True, "f2": False,
              "dotted.key": "x"}
    assert tomllib.loads(dumps_toml(values)) == values
    assert math.isnan(tomllib.loads(dumps_toml({"n": math.nan}))["n"])


ROUTED = {
    "model": "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit",
    "backends": {"small": {"kind": "mlx", "model": "mlx-community/Qwen3-4B-Instruct-2507-4bit", "keep_alive": "10m"},
                 "gpu": {"kind": "openai", "url": "http://gpu-box:8000/v1", "api_key_env": "GPU_API_KEY"}},
    "routes": {"*haiku*": "small", "*opus*": "gpu", "*": "local"},
    "fallbacks": {"gpu": ["local"]},
}


def test_writer_round_trips_nested_tables_and_arrays():
    assert tomllib.loads(dumps_toml(ROUTED)) == ROUTED
    assert tomllib.loads(dumps_toml({"empty": {}})) == {"empty": {}}


def test_writer_refuses_arrays_of_tables():
    with pytest.raises(MlxClaudeError):
        dumps_toml({"list": [{"a": 1}]})


def test_config_set_and_unset_keep_the_routing_tables(tmp_path, capsys):
    path = write_config(ROUTED, tmp_path / "config.toml")
    set_config_value("max_queue", "4", path)
    unset_config_value("model", path)
    assert read_config(path) == {**{k: v for k, v in ROUTED.items() if k != "model"}, "max_queue": 4}
    assert load_settings({}, config_path=path).settings.max_queue == 4
    assert "unknown setting" not in capsys.readouterr().err


def test_config_file_is_written_private(tmp_path):
    path = write_config({"auth_token": "secret"}, tmp_path / "c" / "config.toml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_config(path) == {"auth_token": "secret"}
    assert read_config(tmp_path / "missing.toml") == {}


def test_local_token_is_generated_once_and_private():
    first = local_token()
    assert first == local_token() and len(first) > 20
    token_path = paths.config_dir() / "auth_token"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600


# --- `mlxclaude config` ----------------------------------------------------------------------------


@pytest.fixture
def cli():
    return run_cli


def test_set_get_unset_round_trip(cli):
    result = cli("config", "set", "port", "9100")
    assert result.code == 0, result.err
    assert result.out == "" and "port = 9100" in result.err
    assert read_config(paths.config_file()) == {"port": 9100}
    assert cli("config", "get", "port").out == "9100\n"

    assert cli("config", "set", "ping-interval", "2.5").code == 0
    assert cli("config", "set", "max_tokens_policy", "ERROR").code == 0
    assert cli("config", "set", "model", "org/name").code == 0
    assert read_config(paths.config_file()) == {"port": 9100, "ping_interval": 2.5,
                                                "max_tokens_policy": "error", "model": "org/name"}
    assert ServerSettings.from_env({}).max_tokens_policy == "error"

    result = cli("config", "unset", "port")
    assert result.code == 0 and "port removed" in result.err
    assert cli("config", "get", "port").out == "8765\n"
    assert "not set" in cli("config", "unset", "port").err
    assert cli("config", "get", "context_limit").out == ""


def test_set_validates_and_coerces_by_type(cli):
    result = cli("config", "set", "port", "eighty")
    assert result.code == 2 and "expected an integer" in result.err.splitlines()[0]
    result = cli("config", "set", "max_tokens_policy", "truncate")
    assert result.code == 2 and "clamp, error" in result.err.splitlines()[0]
    result = cli("config", "set", "cache_max_bytes", "4GiB")
    assert result.code == 0 and read_config(paths.config_file()) == {"cache_max_bytes": 4 * 1024**3}
    result = cli("config", "set", "cache_max_bytes", "auto")
    assert result.code == 0 and read_config(paths.config_file()) == {}
    assert not paths.config_file().read_text().count("=")


def test_unknown_key_is_one_line_with_close_matches(cli):
    result = cli("config", "set", "prot", "1")
    assert result.code == 2 and result.out == ""
    error, hint = result.err.splitlines()
    assert error == "error: unknown setting 'prot' (did you mean port?)"
    assert hint.startswith("hint: ") and "max_output_tokens" in hint
    assert cli("config", "get", "nope").code == 2


def test_show_json_says_where_each_value_came_from(cli, monkeypatch):
    cli("config", "set", "port", "9200")
    cli("config", "set", "auth_token", "hunter2-hunter2")
    monkeypatch.setenv("MLXCLAUDE_MAX_QUEUE", "3")
    result = cli("config", "show", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["config_file"] == str(paths.config_file())
    shown = data["settings"]
    assert list(shown) == list(REGISTRY)
    assert shown["port"] == {**shown["port"], "value": 9200, "source": "config", "default": 8765,
                             "env": "MLXCLAUDE_PORT"}
    assert shown["max_queue"]["value"] == 3 and shown["max_queue"]["source"] == "env"
    assert shown["model"]["value"] is None and shown["model"]["source"] == "default"
    assert shown["auth_token"]["value"] == "****ter2" and "hunter2-hunter2" not in result.out
    assert cli("config", "get", "auth_token").out == "hunter2-hunter2\n"


def test_show_table_lists_every_setting(cli, monkeypatch):
    monkeypatch.setenv("MLXCLAUDE_PORT", "9300")
    monkeypatch.setenv("COLUMNS", "200")
    result = cli("config", "show")
    assert result.code == 0
    for setting in SETTINGS:
        assert setting.name in result.out
    assert "MLXCLAUDE_PORT" in result.out and "9300" in result.out
    assert str(paths.config_file()) in result.err


LONG_MODEL = ("/Users/someone/.cache/huggingface/hub/models--mlx-community--Qwen2.5-Coder-7B-Instruct-4bit/"
              "snapshots/0123456789abcdef0123456789abcdef01234567")


@pytest.mark.parametrize("columns", [80, 200])
def test_show_is_one_line_per_setting_within_the_terminal(cli, monkeypatch, columns):
    monkeypatch.setenv("MLXCLAUDE_MODEL", LONG_MODEL)
    monkeypatch.setenv("MLXCLAUDE_MAX_BODY_BYTES", "123456789")
    result = cli("config", "show", env={"COLUMNS": str(columns)})
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == len(SETTINGS) + 1 and max(len(line) for line in lines) <= columns
    model = next(line for line in lines if line.startswith("model "))
    assert LONG_MODEL not in model and "\u2026" in model  # elided in the middle: its start and its end stay
    assert "/Users/" in model and model.split()[1].endswith("01234567")
    assert "123456789" in result.out  # a number is never cut
    assert "--wide" in result.err
    if columns == 200:
        assert "MLXCLAUDE_MODEL" in model and "Cap on every reply's max_tokens." in result.out
    else:
        assert model.split()[2] == "env"


@pytest.mark.parametrize("columns", [80, 250])
def test_show_wide_has_the_full_values_and_descriptions(cli, monkeypatch, columns):
    monkeypatch.setenv("MLXCLAUDE_MODEL", LONG_MODEL)
    result = cli("config", "show", "--wide", env={"COLUMNS": str(columns)})
    assert result.code == 0 and "\u2026" not in result.out and "--wide" not in result.err
    header, *lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= columns
    start, end = header.index("value"), header.index("from")
    rows = lines[:next(i for i, line in enumerate(lines) if line.startswith("host "))]
    assert "".join(line[start:end].strip() for line in rows) == LONG_MODEL  # folded when it must be, whole
    for setting in SETTINGS:
        assert " ".join(setting.description.split()[:2]) in result.out


def test_path_prints_the_config_file(cli):
    assert cli("config", "path").out.strip() == str(paths.config_file())


def test_get_auth_token_uses_the_generated_token(cli):
    token = cli("config", "get", "auth_token").out.strip()
    assert token and token == local_token()
    assert ServerSettings.from_env({}).auth_token is None  # serve on loopback stays open unless configured


def test_show_lists_each_backends_keys_from_the_registry(cli, monkeypatch):
    from mlxclaude.config.registry import BACKEND_KEYS

    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text('[backends.gpu]\nkind = "openai"\nurl = "http://gpu:8000/v1"\n'
                                   'timeout = "2m"\n[routes]\n"*" = "gpu"\n')
    data = json.loads(cli("config", "show", "--json").out)
    gpu = data["backends"]["gpu"]
    assert gpu["url"] == {**gpu["url"], "value": "http://gpu:8000/v1", "source": "config"}
    assert gpu["timeout"]["value"] == "2m" and gpu["cooldown_after"] == {**gpu["cooldown_after"], "value": 2,
                                                                          "source": "default"}
    assert "keep_alive" not in gpu and "deployment" not in gpu  # keys of other kinds
    assert set(gpu) <= {key.name for key in BACKEND_KEYS}
    monkeypatch.setenv("COLUMNS", "200")
    table = cli("config", "show").out
    assert "backends.gpu.url" in table and "backends.gpu.cooldown" in table and "30s" in table


def test_a_toml_syntax_error_is_a_usage_error_like_the_other_config_mistakes(cli):
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("port = = 1\n")
    result = cli("config", "show")
    assert result.code == 2 and "invalid TOML" in result.err
