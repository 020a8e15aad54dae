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
* ``model.safetensors``: seeded random float32 weights, shaped and
  calibrated (see "Making a random model stop" below) so that both greedy
  and temperature-1 decoding usually emit ``<|im_end|>`` after a few dozen
  tokens.
* ``tiny_model.json``: what the calibration chose (informational only).

Token ids: ``<|endoftext|>`` = 0, ``<|im_start|>`` = 1, ``<|im_end|>`` = 2
(EOS); the added tokens are the last six ids.  ``generation_config.json``
lists ``[2, 0]`` as EOS, and mlx-lm's ``load`` takes its EOS ids from there.

Usable as a plain module (tests put ``tests/`` on ``sys.path``) or loaded by
file path from bench scripts::

    spec = importlib.util.spec_from_file_location("tiny_model", "tests/tiny_model.py")

Main entry points: :func:`build_tiny_model` (build into a given directory)
and :func:`ensure_tiny_model` (build once into a cache directory keyed by
the parameters and return it).
"""

from __future__ import annotations

import hashlib
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
TINY_MODEL_VERSION = 2
TOKENIZER_VERSION = 2

DEFAULT_VOCAB_SIZE = 8192

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


def _dist_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"


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


def _json_type(default: Any) -> str:
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "number"
    if isinstance(default, (list, tuple)):
        return "array"
    if isinstance(default, dict):
        return "object"
    return "string"


def _module_source(mod_name: str) -> str | None:
    root = _stdlib_dir()
    rel = Path(*mod_name.split("."))
    for path in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None
    return None


def _schema_records() -> list[dict[str, Any]]:
    """Tool-schema-like records from public stdlib functions, parsed with ``ast``.

    Parsing source (rather than importing and introspecting modules) keeps
    the corpus independent of the interpreter's state.
    """
    import ast

    records: list[dict[str, Any]] = []
    for mod_name in _SCHEMA_MODULES:
        source = _module_source(mod_name)
        if source is None:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        functions = []
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                functions += [(f"{node.name}_", m) for m in node.body]
            else:
                functions.append(("", node))
        for prefix, node in functions:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
                continue
            args = node.args
            positional = args.posonlyargs + args.args
            defaults: list[Any] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            params = list(zip(positional, defaults)) + list(zip(args.kwonlyargs, args.kw_defaults))
            props: dict[str, Any] = {}
            required: list[str] = []
            for arg, default_node in params:
                if arg.arg in ("self", "cls"):
                    continue
                default: Any = None
                if default_node is not None:
                    try:
                        default = ast.literal_eval(default_node)
                    except ValueError:
                        default = None
                prop: dict[str, Any] = {
                    "type": _json_type(default),
                    "description": f"The {arg.arg.replace('_', ' ')} argument of {node.name}.",
                }
                if default_node is None:
                    required.append(arg.arg)
                elif isinstance(default, (str, int, float, bool)):
                    prop["default"] = default
                props[arg.arg] = prop
            doc = ast.get_docstring(node) or ""
            summary = doc.split("\n\n")[0].replace("\n", " ").strip() or f"Call {mod_name}.{node.name}."
            records.append(
                {
                    "name": f"{mod_name.replace('.', '_')}_{prefix}{node.name}",
                    "description": summary[:600],
                    "input_schema": {
                        "type": "object",
                        "properties": props,
                        "required": required,
                        "additionalProperties": False,
                        "$schema": "http://json-schema.org/draft-07/schema#",
                    },
                    "_example": {k: v.get("default", f"<{k}>") for k, v in props.items()},
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

# Making a random model stop
# --------------------------
# A random tied-embedding model either repeats one token forever under
# greedy decoding or never samples EOS.  The weights are shaped so that it
# behaves like a chatty but terminating model:
#
# * channel 0 of the residual stream is a constant "bias channel": every
#   embedding row holds BIAS_CHANNEL in it and no layer writes to it (row 0
#   of o_proj / down_proj is zero).  The EOS row holds BIAS_CHANNEL + beta
#   there, so the EOS logit is raised by ~beta at every position while all
#   other logits shift alike (invisible to softmax).
# * the final RMSNorm weight is LOGIT_SCALE * (random +-1 signs) and each
#   embedding row is rebalanced so that its +-signed halves have equal norm:
#   a token no longer scores itself highest (no greedy self-loops), and the
#   logits are peaked enough for EOS to be likely under sampling without
#   always winning the argmax.
# * the MLP output is amplified by MLP_GAIN so the next token is a
#   non-symmetric function of the current one (fewer greedy 2-cycles).
#
# beta (and the scale alpha of the EOS row's random part) are calibrated at
# build time on a few fixed chats: beta so that the per-token EOS
# probability under temperature-1 sampling is TARGET_EOS_PROB (mean length
# ~1/TARGET_EOS_PROB tokens); among CALIBRATION_CANDIDATES sub-seeds and
# alphas, the first whose greedy decodes end within GREEDY_RANGE for all but
# two of the chats (else the best) is kept.  Everything is seeded, so builds are reproducible.
LOGIT_SCALE = 3.0
BIAS_CHANNEL = 0.5
MLP_GAIN = 6.0
TARGET_EOS_PROB = 1 / 40
GREEDY_RANGE = (4, 128)
CALIBRATION_CANDIDATES = 3
_CALIBRATION_ALPHAS = (0.0, 1.0)
_CALIBRATION_PROMPTS = [
    "hi",
    "Write a function that parses JSON and returns a dict.",
    "What is the weather in Paris?",
    "List the files in /tmp",
    "Explain recursion in one paragraph.",
    "Fix the bug in main.py",
    "Run the tests and tell me what fails.",
    "ok",
]


def _calibration_chats(tok) -> list[list[int]]:
    """Token ids of fixed ChatML chats ending in an assistant generation prompt."""
    chats = []
    for i, prompt in enumerate(_CALIBRATION_PROMPTS):
        system = "You are a coding agent."
        if i == 1:  # one long prompt, like an agent's system prompt + tools
            system += "\n\n" + "\n".join(_docs_corpus()[:6])[:3000]
        text = (
            f"{IM_START}system\n{system}{IM_END}\n"
            f"{IM_START}user\n{prompt}{IM_END}\n"
            f"{IM_START}assistant\n"
        )
        chats.append(tok.encode(text).ids)
    return chats


def _random_model(config: dict[str, Any], seed: int):
    """A seeded random qwen2 model with the shaping above (beta = 0, alpha = 1)."""
    import mlx.core as mx
    from mlx_lm.models import qwen2

    mx.random.seed(seed)
    model = qwen2.Model(qwen2.ModelArgs.from_dict(config))
    dims = config["hidden_size"]
    key = mx.random.key(seed + 7919)
    signs = mx.where(mx.random.bernoulli(0.5, (dims,), key=key), 1.0, -1.0)
    signs[0] = 1.0
    pos = (signs > 0).astype(mx.float32)
    pos[0] = 0.0
    neg = (signs < 0).astype(mx.float32)

    emb = model.model.embed_tokens.weight
    a = ((emb * pos) ** 2).sum(axis=1, keepdims=True)
    b = ((emb * neg) ** 2).sum(axis=1, keepdims=True)
    m = (a + b) / 2
    emb = emb * pos * mx.sqrt(m / a) + emb * neg * mx.sqrt(m / b)
    emb[:, 0] = BIAS_CHANNEL
    model.model.embed_tokens.weight = emb
    model.model.norm.weight = LOGIT_SCALE * signs
    for layer in model.model.layers:
        o = layer.self_attn.o_proj.weight
        o[0] = 0.0
        layer.self_attn.o_proj.weight = o
        d = MLP_GAIN * layer.mlp.down_proj.weight
        d[0] = 0.0
        layer.mlp.down_proj.weight = d
    mx.eval(model.parameters())
    return model


def _set_eos_row(model, eos_id: int, alpha: float, beta: float, base_row) -> None:
    row = alpha * base_row
    row[0] = BIAS_CHANNEL + beta
    emb = model.model.embed_tokens.weight
    emb[eos_id] = row
    model.model.embed_tokens.weight = emb


def _trajectories(model, chats, eos_id: int, *, steps: int, seed: int):
    """Decode ``steps`` tokens per chat, greedily and by sampling, EOS masked.

    Returns ``(greedy, sampled)``: per chat an array (4, steps) of the EOS
    logit's bias-channel coefficient, the EOS logit's random part (alpha =
    1), and the max and logsumexp of the other logits.  Since EOS is never
    fed back, the trajectories do not depend on alpha/beta, which are then
    fitted offline.  Chats of similar length run as one left-padded batch.
    """
    import mlx.core as mx
    import numpy as np
    from mlx_lm.models.cache import BatchKVCache

    emb = model.model.embed_tokens.weight
    eos_row = emb[eos_id]
    mask = mx.zeros((emb.shape[0],)).at[eos_id].add(-1e9)
    key = mx.random.key(seed)
    greedy: dict[int, Any] = {}
    sampled: dict[int, Any] = {}
    order = sorted(range(len(chats)), key=lambda i: len(chats[i]))
    while order:
        group = [i for i in order if len(chats[i]) <= 1.5 * len(chats[order[0]])]
        order = order[len(group) :]
        n = len(group)
        seqs = [chats[i] for i in group] * 2  # first half greedy, second half sampled
        width = max(len(c) for c in seqs)
        padding = [width - len(c) for c in seqs]
        x = mx.array([[0] * p + list(c) for p, c in zip(padding, seqs)])
        cache = [BatchKVCache(padding) for _ in model.layers]
        is_greedy = mx.array([True] * n + [False] * n)
        rows = []
        for _ in range(steps):
            h = model.model(x, cache=cache)[:, -1]
            logits = h @ emb.T + mask
            rows.append(mx.stack([h[:, 0], h[:, 1:] @ eos_row[1:], logits.max(axis=-1), mx.logsumexp(logits, axis=-1)]))
            key, sub = mx.random.split(key)
            nxt = mx.where(is_greedy, mx.argmax(logits, axis=-1), mx.random.categorical(logits, key=sub))
            x = nxt[:, None]
            mx.eval(x, rows[-1])
        data = np.array(mx.stack(rows, axis=-1))  # (4, 2n, steps)
        for j, i in enumerate(group):
            greedy[i] = data[:, j]
            sampled[i] = data[:, n + j]
    return [greedy[i] for i in range(len(chats))], [sampled[i] for i in range(len(chats))]


def _eos_logit(traj, alpha: float, beta: float):
    return traj[0] * (BIAS_CHANNEL + beta) + alpha * traj[1]


def _mean_eos_prob(trajs, alpha: float, beta: float) -> float:
    import numpy as np

    return float(np.mean([1 / (1 + np.exp(t[3] - _eos_logit(t, alpha, beta))) for t in trajs]))


def _greedy_lengths(trajs, alpha: float, beta: float) -> list[int | None]:
    import numpy as np

    res: list[int | None] = []
    for t in trajs:
        hit = np.nonzero(_eos_logit(t, alpha, beta) > t[2])[0]
        res.append(int(hit[0]) + 1 if len(hit) else None)
    return res


def _solve_beta(trajs, alpha: float) -> float:
    lo, hi = -20.0, 40.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _mean_eos_prob(trajs, alpha, mid) < TARGET_EOS_PROB:
            lo = mid
        else:
            hi = mid
    return round((lo + hi) / 2, 3)


def _calibrated_model(config: dict[str, Any], tok, eos_id: int, seed: int):
    import mlx.core as mx

    chats = _calibration_chats(tok)
    steps = GREEDY_RANGE[1]
    best = None
    for k in range(CALIBRATION_CANDIDATES):
        sub_seed = seed * 1000 + k
        model = _random_model(config, sub_seed)
        base_row = mx.array(model.model.embed_tokens.weight[eos_id])
        greedy, sampled = _trajectories(model, chats, eos_id, steps=steps, seed=sub_seed)
        for alpha in _CALIBRATION_ALPHAS:
            beta = _solve_beta(sampled, alpha)
            lengths = _greedy_lengths(greedy, alpha, beta)
            score = sum(1 for n in lengths if n is not None and n >= GREEDY_RANGE[0])
            if best is None or score > best[0]:
                best = (score, k, alpha, beta, lengths, model, base_row)
        if best[0] >= len(chats) - 2:
            break
    score, k, alpha, beta, lengths, model, base_row = best
    _set_eos_row(model, eos_id, alpha, beta, base_row)
    info = {
        "sub_seed": seed * 1000 + k,
        "eos_alpha": alpha,
        "eos_beta": beta,
        "target_eos_prob": TARGET_EOS_PROB,
        "calibration_greedy_lengths": lengths,
        "greedy_range": list(GREEDY_RANGE),
    }
    return model, info


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

    model, info = _calibrated_model(config, tok, eos_id, seed)
    weights = {k: v.astype(mx.float32) for k, v in tree_flatten(model.parameters())}
    mx.eval(weights)
    mx.save_safetensors(str(out_dir / "model.safetensors"), weights, metadata={"format": "mlx"})
    info.update(version=TINY_MODEL_VERSION, eos_token_id=eos_id, endoftext_token_id=eot_id, vocab_size=real_vocab)
    (out_dir / "tiny_model.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
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
        {
            "v": TINY_MODEL_VERSION,
            "tv": TOKENIZER_VERSION,
            "py": _python_tag(),
            "tok": _tokenizers_version(),
            "mlx": _dist_version("mlx"),
            "mlx_lm": _dist_version("mlx-lm"),
            **params,
        },
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
    tokenizer_json(params.get("vocab_size", DEFAULT_VOCAB_SIZE), cache_root=root)  # memoized for the build
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


def build_once(target: Path, build: Any) -> Path:
    """`target`, built by `build(directory)` unless it is there: into a temporary sibling renamed into place, so
    concurrent callers are safe (for fixtures derived from the tiny model)."""
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def copy_without_eos(model_dir: Path, target: Path) -> Path:
    """`model_dir` with every end-of-reply id pointing at <|im_start|> (never generated), weights linked."""
    target.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        if item.suffix == ".json":
            continue
        link = target / item.name
        if not link.exists():
            link.symlink_to(item.resolve())
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    never_text = "<|im_start|>"
    never = None
    for token_id, spec in (tokenizer_config.get("added_tokens_decoder") or {}).items():
        if spec.get("content") == never_text:
            never = int(token_id)
    if never is None:
        tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
        never = next(t["id"] for t in tokenizer.get("added_tokens", []) if t["content"] == never_text)
    for item in model_dir.iterdir():
        if item.suffix != ".json":
            continue
        data = json.loads(item.read_text())
        if item.name in ("config.json", "generation_config.json") and "eos_token_id" in data:
            data["eos_token_id"] = never if item.name == "config.json" else [never]
        if item.name == "tokenizer_config.json":
            data["eos_token"] = never_text
        (target / item.name).write_text(json.dumps(data, indent=1))
    return target
