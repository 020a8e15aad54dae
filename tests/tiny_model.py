"""Offline builder of a tiny random-weight mlx-lm model with a real tokenizer.

The model directory looks like a small Qwen2.5-style checkpoint:

* ``tokenizer.json``: a byte-level BPE (Qwen2 pre-tokenizer regex, NFC,
  ByteLevel decoder) trained with the ``tokenizers`` library on text taken
  from the local Python standard library (source, docstrings, pydoc topics)
  plus synthetic JSON tool schemas derived from stdlib signatures.  Nothing
  is downloaded.
* ``tokenizer_config.json``: ``PreTrainedTokenizerFast`` with a ChatML /
  Hermes tool-calling chat template modelled on Qwen2.5's.
* ``config.json`` / ``generation_config.json``: mlx-lm ``qwen2`` architecture.
* ``model.safetensors``: seeded random float32 weights, with the EOS
  (``<|im_end|>``) embedding row biased so that sampling usually stops after
  a few dozen tokens.

Usable as a plain module (tests put ``tests/`` on ``sys.path``) or loaded by
file path from bench scripts::

    spec = importlib.util.spec_from_file_location("tiny_model", "tests/tiny_model.py")

Main entry points: :func:`build_tiny_model` (build into a given directory)
and :func:`ensure_tiny_model` (build once into a cache directory keyed by
the parameters and return it).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

# Bump when anything that changes the produced files changes.
TINY_MODEL_VERSION = 1
TOKENIZER_VERSION = 1

DEFAULT_VOCAB_SIZE = 2048

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]
# Added (non-special) tokens, as in Qwen2.5/Qwen3: they survive
# ``decode(..., skip_special_tokens=True)``.
ADDED_TOKENS = [
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]

# Qwen2 pre-tokenizer regex (single digits, whitespace runs kept together).
_QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2.5-Instruct's template, with three robustness changes: content may be
# None or a list of {"type": "text", "text": ...} parts, string tool-call
# arguments are emitted verbatim (dicts go through tojson), and the default
# system prompt is neutral.  ``reasoning_content`` is never rendered.
CHAT_TEMPLATE = (
    "{%- macro render_content(content) -%}\n"
    "    {%- if content is none -%}\n"
    "    {%- elif content is string -%}\n"
    "        {{- content }}\n"
    "    {%- else -%}\n"
    "        {%- for part in content -%}\n"
    "            {%- if part is string -%}\n"
    "                {{- part }}\n"
    "            {%- elif part.text is defined and part.text is not none -%}\n"
    "                {{- part.text }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- endif -%}\n"
    "{%- endmacro -%}\n"
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- render_content(messages[0]['content']) }}\n"
    "    {%- else %}\n"
    "        {{- '" + DEFAULT_SYSTEM_PROMPT + "' }}\n"
    "    {%- endif %}\n"
    '    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.'
    '\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n'
    "    {%- for tool in tools %}\n"
    '        {{- "\\n" }}\n'
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and '
    "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n'
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + render_content(messages[0]['content']) + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    '    {%- if (message.role == "user") or (message.role == "system" and not loop.first)'
    ' or (message.role == "assistant" and not message.tool_calls) %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' + render_content(message.content) + '<|im_end|>' + '\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + render_content(message.content) }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {%- if tool_call.arguments is string %}\n"
    "                {{- tool_call.arguments }}\n"
    "            {%- else %}\n"
    "                {{- tool_call.arguments | tojson }}\n"
    "            {%- endif %}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}\n'
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- render_content(message.content) }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)

_TESTS_DIR = Path(__file__).resolve().parent
_REPO_ROOT = _TESTS_DIR.parent


def default_cache_root() -> Path:
    """``$MLXCLAUDE_TEST_CACHE`` or ``<repo>/.cache/test-models``."""
    env = os.environ.get("MLXCLAUDE_TEST_CACHE")
    if env:
        return Path(env).expanduser()
    return _REPO_ROOT / ".cache" / "test-models"


def _python_tag() -> str:
    return f"py{sys.version_info[0]}{sys.version_info[1]}"


def _tokenizers_version() -> str:
    import tokenizers

    return tokenizers.__version__


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

_CODE_BYTES = 2_000_000  # Python source (code + docstrings)
_CODE_PER_FILE = 8_000
_DOCS_BYTES = 800_000  # English prose (pydoc topics)
_JSON_BYTES = 700_000  # synthetic JSON tool schemas / tool calls

_SCHEMA_MODULES = [
    "os",
    "os.path",
    "shutil",
    "subprocess",
    "json",
    "re",
    "string",
    "textwrap",
    "pathlib",
    "glob",
    "fnmatch",
    "tempfile",
    "io",
    "time",
    "datetime",
    "calendar",
    "math",
    "statistics",
    "random",
    "itertools",
    "functools",
    "operator",
    "collections",
    "heapq",
    "bisect",
    "copy",
    "pprint",
    "base64",
    "binascii",
    "hashlib",
    "hmac",
    "secrets",
    "uuid",
    "zlib",
    "gzip",
    "bz2",
    "lzma",
    "zipfile",
    "tarfile",
    "csv",
    "configparser",
    "logging",
    "platform",
    "socket",
    "ssl",
    "urllib.parse",
    "urllib.request",
    "http.client",
    "email.utils",
    "html",
    "inspect",
    "ast",
    "tokenize",
    "difflib",
    "unicodedata",
    "locale",
    "gettext",
    "argparse",
    "getpass",
    "threading",
    "queue",
    "sched",
    "contextlib",
    "warnings",
    "traceback",
    "types",
    "typing",
    "dataclasses",
    "enum",
    "abc",
    "numbers",
    "decimal",
    "fractions",
    "sqlite3",
    "pickle",
    "shelve",
    "struct",
    "codecs",
    "mimetypes",
    "webbrowser",
]


def _stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _code_corpus() -> list[str]:
    root = _stdlib_dir()
    skip = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3", "pydoc_data"}
    files = sorted(
        (p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    out: list[str] = []
    total = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        text = text[:_CODE_PER_FILE]
        out.append(text)
        total += len(text)
        if total >= _CODE_BYTES:
            break
    return out


def _docs_corpus() -> list[str]:
    try:
        from pydoc_data.topics import topics
    except Exception:  # pragma: no cover - stripped Python builds
        return []
    out: list[str] = []
    total = 0
    for key in sorted(topics):
        text = topics[key]
        out.append(text)
        total += len(text)
        if total >= _DOCS_BYTES:
            break
    return out


def _json_type(annotation: Any, default: Any) -> str:
    for value in (default,):
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "integer"
        if isinstance(value, float):
            return "number"
        if isinstance(value, (list, tuple)):
            return "array"
        if isinstance(value, dict):
            return "object"
    return "string"


def _schema_records() -> list[dict[str, Any]]:
    import importlib
    import warnings

    records: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod_name in _SCHEMA_MODULES:
            try:
                mod = importlib.import_module(mod_name)
            except Exception:
                continue
            for name in sorted(dir(mod)):
                if name.startswith("_"):
                    continue
                obj = getattr(mod, name, None)
                if not callable(obj) or isinstance(obj, type):
                    continue
                doc = inspect.getdoc(obj) or ""
                try:
                    sig = inspect.signature(obj)
                except (TypeError, ValueError):
                    continue
                props: dict[str, Any] = {}
                required: list[str] = []
                for pname, param in sig.parameters.items():
                    if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                        continue
                    default = None if param.default is param.empty else param.default
                    prop: dict[str, Any] = {"type": _json_type(param.annotation, default)}
                    prop["description"] = f"The {pname.replace('_', ' ')} argument of {name}."
                    if param.default is param.empty:
                        required.append(pname)
                    elif isinstance(default, (str, int, float, bool)) and default is not None:
                        prop["default"] = default
                    props[pname] = prop
                summary = doc.split("\n\n")[0].replace("\n", " ").strip() or f"Call {mod_name}.{name}."
                records.append(
                    {
                        "name": f"{mod_name.replace('.', '_')}_{name}",
                        "description": summary[:600],
                        "input_schema": {
                            "type": "object",
                            "properties": props,
                            "required": required,
                            "additionalProperties": False,
                            "$schema": "http://json-schema.org/draft-07/schema#",
                        },
                        "_example": {k: (v.get("default", f"<{k}>")) for k, v in props.items()},
                    }
                )
    return records


def _json_corpus() -> list[str]:
    out: list[str] = []
    total = 0
    for i, rec in enumerate(_schema_records()):
        example = rec.pop("_example")
        anthropic_style = rec
        openai_style = {
            "type": "function",
            "function": {
                "name": rec["name"],
                "description": rec["description"],
                "parameters": rec["input_schema"],
            },
        }
        call = {"name": rec["name"], "arguments": example}
        variant = i % 4
        if variant == 0:
            text = json.dumps(anthropic_style, ensure_ascii=False)
        elif variant == 1:
            text = json.dumps(openai_style, ensure_ascii=False)
        elif variant == 2:
            text = json.dumps(anthropic_style, indent=2, ensure_ascii=False)
        else:
            text = json.dumps(openai_style, indent=2, ensure_ascii=False)
        text += "\n<tool_call>\n" + json.dumps(call, ensure_ascii=False) + "\n</tool_call>\n"
        out.append(text)
        total += len(text)
        if total >= _JSON_BYTES:
            break
    return out


def training_corpus() -> list[str]:
    """The deterministic offline training corpus (a few MB of text)."""
    return _code_corpus() + _docs_corpus() + _json_corpus()


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

_TOKENIZER_MEMO: dict[int, str] = {}
_TOKENIZER_LOCK = threading.Lock()


def _tokenizer_cache_path(vocab_size: int, cache_root: Path | None) -> Path:
    root = cache_root if cache_root is not None else default_cache_root()
    name = f"bpe-v{TOKENIZER_VERSION}-{_python_tag()}-tok{_tokenizers_version()}-{vocab_size}.json"
    return root / "tokenizers" / name


def _train_tokenizer_json(vocab_size: int) -> str:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)

    n_base = vocab_size - len(ADDED_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=n_base,
        min_frequency=2,
        show_progress=False,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(training_corpus(), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    return tok.to_str()


def tokenizer_json(vocab_size: int = DEFAULT_VOCAB_SIZE, *, cache_root: Path | None = None) -> str:
    """The serialized trained tokenizer (memoized in-process and on disk)."""
    if vocab_size < 512:
        raise ValueError("vocab_size must be at least 512")
    with _TOKENIZER_LOCK:
        cached = _TOKENIZER_MEMO.get(vocab_size)
        if cached is not None:
            return cached
        path = _tokenizer_cache_path(vocab_size, cache_root)
        text = None
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
                json.loads(text)
            except (OSError, ValueError):
                text = None
        if text is None:
            text = _train_tokenizer_json(vocab_size)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)
            except OSError:
                pass  # cache is best effort
        _TOKENIZER_MEMO[vocab_size] = text
        return text


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

# Logit shaping, so that a random model neither repeats one token forever
# under greedy decoding nor rambles under sampling:
#
# * the final RMSNorm weight is LOGIT_SCALE * (random +-1 signs).  With tied
#   embeddings and the default all-ones norm, the current token scores
#   highest against itself and greedy decoding sticks on it; random signs
#   remove that bias, and the scale makes the logits peaked enough that EOS
#   can be likely under sampling without always winning under argmax.
# * every embedding row gets a shared component SHARED_COMPONENT * u (u a
#   random unit vector).  That shifts all logits alike (invisible to
#   softmax) but makes the normalized hidden state always lean along u.
# * the EOS row gets an extra EOS_BOOST * (signs * u), which raises the EOS
#   logit by about EOS_BOOST * LOGIT_SCALE * <norm(h), u> at every position.
LOGIT_SCALE = 3.0
SHARED_COMPONENT = 0.6
EOS_BOOST = 1.0


def _shape_logits(model, eos_id: int, seed: int) -> None:
    import mlx.core as mx

    embed = model.model.embed_tokens
    dims = embed.weight.shape[1]
    k1, k2 = mx.random.split(mx.random.key(seed + 7919))
    u = mx.random.normal((dims,), key=k1)
    u = u / mx.linalg.norm(u)
    signs = mx.where(mx.random.bernoulli(0.5, (dims,), key=k2), 1.0, -1.0)
    weight = embed.weight + SHARED_COMPONENT * u[None, :]
    boost = mx.zeros((weight.shape[0], 1)).at[eos_id].add(EOS_BOOST)
    embed.weight = weight + boost * (signs * u)[None, :]
    model.model.norm.weight = LOGIT_SCALE * signs


def _model_config(
    *,
    num_layers: int,
    hidden_size: int,
    num_heads: int,
    vocab_size: int,
    max_position_embeddings: int,
    eos_id: int,
    bos_id: int | None,
) -> dict[str, Any]:
    if hidden_size % num_heads:
        raise ValueError("hidden_size must be divisible by num_heads")
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "intermediate_size": 4 * hidden_size,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_heads,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-6,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_position_embeddings,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "use_sliding_window": False,
        "max_window_layers": num_layers,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
    }


def build_tiny_model(
    out_dir: Path,
    *,
    num_layers: int = 1,
    hidden_size: int = 64,
    num_heads: int = 2,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    max_position_embeddings: int = 32768,
    seed: int = 0,
) -> Path:
    """Write a loadable mlx-lm model directory into ``out_dir`` and return it.

    ``vocab_size`` is the total vocabulary including special and added
    tokens; ``config.json``'s ``vocab_size`` equals it exactly.  The trained
    tokenizer is cached (in-process and under :func:`default_cache_root`),
    so only the first build for a given vocab size pays for training.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import qwen2
    from tokenizers import Tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tok_text = tokenizer_json(vocab_size)
    tok = Tokenizer.from_str(tok_text)
    real_vocab = tok.get_vocab_size(with_added_tokens=True)
    eos_id = tok.token_to_id(IM_END)
    eot_id = tok.token_to_id(ENDOFTEXT)
    (out_dir / "tokenizer.json").write_text(tok_text, encoding="utf-8")

    added_decoder = {}
    for tid, added in sorted(tok.get_added_tokens_decoder().items()):
        added_decoder[str(tid)] = {
            "content": added.content,
            "lstrip": added.lstrip,
            "normalized": added.normalized,
            "rstrip": added.rstrip,
            "single_word": added.single_word,
            "special": added.special,
        }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added_decoder,
        "additional_special_tokens": [IM_START, IM_END],
        "bos_token": None,
        "eos_token": IM_END,
        "pad_token": ENDOFTEXT,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "errors": "replace",
        "model_max_length": max_position_embeddings,
        "split_special_tokens": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "additional_special_tokens": [IM_START, IM_END],
                "eos_token": IM_END,
                "pad_token": ENDOFTEXT,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )

    config = _model_config(
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        vocab_size=real_vocab,
        max_position_embeddings=max_position_embeddings,
        eos_id=eos_id,
        bos_id=None,
    )
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (out_dir / "generation_config.json").write_text(
        json.dumps({"bos_token_id": None, "eos_token_id": [eos_id, eot_id], "pad_token_id": eot_id, "do_sample": True}, indent=2) + "\n",
        encoding="utf-8",
    )

    mx.random.seed(seed)
    args = qwen2.ModelArgs.from_dict(config)
    model = qwen2.Model(args)
    _shape_logits(model, eos_id, seed)
    weights = {k: v.astype(mx.float32) for k, v in tree_flatten(model.parameters())}
    mx.eval(weights)
    mx.save_safetensors(str(out_dir / "model.safetensors"), weights, metadata={"format": "mlx"})
    return out_dir


# --------------------------------------------------------------------------
# Cached builds
# --------------------------------------------------------------------------


def model_cache_key(
    *,
    num_layers: int = 1,
    hidden_size: int = 64,
    num_heads: int = 2,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    max_position_embeddings: int = 32768,
    seed: int = 0,
) -> str:
    """Directory name for a cached build with these parameters."""
    params = dict(
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        vocab_size=vocab_size,
        max_position_embeddings=max_position_embeddings,
        seed=seed,
    )
    blob = json.dumps(
        {"v": TINY_MODEL_VERSION, "tv": TOKENIZER_VERSION, "py": _python_tag(), "tok": _tokenizers_version(), **params},
        sort_keys=True,
    )
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    return f"tiny-v{TINY_MODEL_VERSION}-L{num_layers}-H{hidden_size}-V{vocab_size}-s{seed}-{digest}"


def ensure_tiny_model(cache_root: Path | None = None, **params: Any) -> Path:
    """Return a cached model directory for ``params``, building it if needed.

    The build goes to a temporary sibling directory that is renamed into
    place, so concurrent callers (e.g. pytest-xdist workers) are safe.
    """
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    target = root / model_cache_key(**params)
    if (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        build_tiny_model(tmp, **params)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
