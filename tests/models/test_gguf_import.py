"""GGUF import: the real SmolLM2 GGUF end to end, and tiny synthetic GGUFs (written with
``mx.save_gguf``) of each supported architecture, checked logit for logit against mlx-lm."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from real_models import require_smollm2_gguf

from mlxclaude import paths
from mlxclaude.engine.convert.gguf import unpermute_rows, write_gguf_model
from mlxclaude.engine.convert.gguf_arch import ARCHES, llama3_rope_scaling
from mlxclaude.engine.convert.gguf_tokenizer import bytes_to_unicode
from mlxclaude.errors import MlxClaudeError, UsageError
from mlxclaude.models.gguf_import import GgufImportError, import_gguf

CAPITAL_PROMPT = "What is the capital of France?"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MLXCLAUDE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _greedy(model_dir: Path, question: str, max_tokens: int = 10) -> str:
    from mlx_lm import generate, load

    model, tokenizer = load(str(model_dir))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True)
    return generate(model, tokenizer, prompt, max_tokens=max_tokens)


# --- the real SmolLM2-135M-Instruct GGUF ---------------------------------------------------------


def test_smollm2_answers_with_paris(smollm2_model_dir):
    answer = _greedy(smollm2_model_dir, CAPITAL_PROMPT)
    assert "Paris" in answer, answer


def test_smollm2_config_matches_gguf_metadata(smollm2_model_dir):
    from mlx_lm.models.llama import ModelArgs
    from mlx_lm.utils import load_config

    _, meta = mx.load(str(require_smollm2_gguf()), return_metadata=True)
    config = load_config(smollm2_model_dir)
    assert config["model_type"] == "llama"
    assert config["hidden_size"] == meta["llama.embedding_length"].item() == 576
    assert config["num_hidden_layers"] == meta["llama.block_count"].item() == 30
    assert config["intermediate_size"] == meta["llama.feed_forward_length"].item()
    assert config["num_attention_heads"] == meta["llama.attention.head_count"].item()
    assert config["num_key_value_heads"] == meta["llama.attention.head_count_kv"].item()
    assert config["rms_norm_eps"] == pytest.approx(meta["llama.attention.layer_norm_rms_epsilon"].item())
    assert config["rope_theta"] == pytest.approx(meta["llama.rope.freq_base"].item())
    assert config["max_position_embeddings"] == meta["llama.context_length"].item()
    assert config["vocab_size"] == len(meta["tokenizer.ggml.tokens"]) == 49152
    assert config["tie_word_embeddings"] is True  # the GGUF has no output.weight
    assert "quantization" not in config
    assert config["eos_token_id"] == [2, 0]  # from generation_config.json: <|im_end|>, <|endoftext|>
    args = ModelArgs.from_dict(config)
    assert args.head_dim == 64


def test_smollm2_tokenizer_round_trips_and_renders_template(smollm2_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_model_dir))
    text = "Hello, world!\n  def f(x): return x"
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["Hello", ","]  # merges applied, not bytes
    assert tokenizer.encode("12") == [tokenizer.convert_tokens_to_ids("1"), tokenizer.convert_tokens_to_ids("2")]
    assert tokenizer.encode("<|im_start|>") == [1]
    assert tokenizer.eos_token == "<|im_end|>"
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                             add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    special = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert tokenizer.decode(special, skip_special_tokens=True) == "user\nhi"


def test_import_gguf_into_models_dir_keeping_its_size(home):
    gguf = require_smollm2_gguf()
    notes = []
    dest = import_gguf(gguf, note=notes.append)
    assert dest == paths.imported_models_dir() / "SmolLM2-135M-Instruct-Q4_1"
    assert dest.is_relative_to(home)
    for name in ("config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        assert (dest / name).is_file(), name
    config = json.loads((dest / "config.json").read_text())
    # Q4_1 blocks kept as mlx 4-bit / group 32; llama.cpp stored the tied embedding as Q8_0: 8-bit / group 32
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 32
    assert config["quantization"]["model.embed_tokens"] == {"group_size": 32, "bits": 8, "mode": "affine"}
    size = sum(p.stat().st_size for p in dest.glob("*.safetensors"))
    assert size < 1.02 * gguf.stat().st_size  # about the GGUF's own 98 MB (float32 was 517 MB)
    assert notes[0].startswith("Q4_1 file: 210 Q4_1 → 4-bit/g32 (exact), 1 Q8_0 → 8-bit/g32 (exact)")
    assert notes[0].endswith(": the file's own size class (--quantize 4|8 or --dtype to choose)")
    assert notes[1].startswith("check: 4 greedy tokens ('The capital of France')")
    record = json.loads((dest / "mlxclaude_import.json").read_text())  # the front-end's note of the source
    assert record["format"] == "gguf" and record["architecture"] == "llama" and record["quantize"] is None
    assert record["source"] == str(gguf.resolve()) and record["gguf_file_type"] == "Q4_1"
    assert record["check"]["ok"] and record["check"]["text"] == "The capital of France"
    assert not list(home.glob("data/models/.*"))  # no temp dirs left behind
    answer = _greedy(dest, CAPITAL_PROMPT)
    assert "Paris" in answer, answer

    with pytest.raises(MlxClaudeError) as excinfo:
        import_gguf(gguf)
    assert "already exists" in excinfo.value.message and "--force" in excinfo.value.hint
    before = (dest / "config.json").stat().st_mtime_ns
    assert import_gguf(gguf, overwrite=True, verify=False) == dest
    assert (dest / "config.json").stat().st_mtime_ns != before


def test_import_gguf_quantized_to_4_bits_keeps_the_q4_1_blocks(tmp_path):
    out = tmp_path / "q4"
    config = write_gguf_model(require_smollm2_gguf(), out, quantize=4)
    quantization = json.loads((out / "config.json").read_text())["quantization"]
    assert quantization == config["quantization"]
    # the Q4_1 blocks are already 4-bit: kept as mlx 4-bit / group 32, lossless; only the Q8_0
    # embedding is re-quantized, with mlx-lm's group size
    assert (quantization["bits"], quantization["group_size"]) == (4, 32)
    assert quantization["model.embed_tokens"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    assert sum(p.stat().st_size for p in out.glob("*.safetensors")) < 120e6  # float32 is ~540 MB
    answer = _greedy(out, CAPITAL_PROMPT)
    assert "Paris" in answer, answer


# --- errors -------------------------------------------------------------------------------------


def test_not_a_gguf_file(home, tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("not really a model")
    with pytest.raises(GgufImportError) as excinfo:
        import_gguf(bogus)
    assert "not a GGUF file" in excinfo.value.message and "\n" not in excinfo.value.message
    assert excinfo.value.hint


def test_missing_file_and_directory(home, tmp_path):
    with pytest.raises(GgufImportError, match="no such file"):
        import_gguf(tmp_path / "nope.gguf")
    with pytest.raises(GgufImportError) as excinfo:
        import_gguf(tmp_path)
    assert "directory" in excinfo.value.message and "safetensors" in excinfo.value.hint


def test_unsupported_architecture_is_named(home, tmp_path):
    path = tmp_path / "mamba.gguf"
    mx.save_gguf(str(path), {"token_embd.weight": mx.zeros((8, 4))},
                 {"general.architecture": "mamba", "mamba.block_count": mx.array(1, dtype=mx.uint32)})
    with pytest.raises(GgufImportError) as excinfo:
        import_gguf(path)
    message = excinfo.value.message
    assert "'mamba'" in message and all(arch in message for arch in ("llama", "qwen2", "qwen3", "gemma3"))
    assert "Hugging Face" in excinfo.value.hint
    assert not paths.imported_models_dir().exists() or not any(paths.imported_models_dir().iterdir())


def test_one_part_of_a_split_gguf_is_refused(home, tmp_path):
    import gguf as gguf_package

    path = tmp_path / "model-00001-of-00002.gguf"
    writer = gguf_package.GGUFWriter(path, arch="llama")
    writer.add_uint16("split.count", 2)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(GgufImportError) as excinfo:
        import_gguf(path)
    assert "one part of a split GGUF (2 files)" in excinfo.value.message and "--merge" in excinfo.value.hint


@pytest.mark.parametrize("kwargs", [{"quantize": 7}, {"dtype": "float64"}, {"name": "../escape"}])
def test_bad_options(home, tmp_path, kwargs):
    path = tmp_path / "x.gguf"
    mx.save_gguf(str(path), {"a": mx.zeros((2,))}, {"general.architecture": "llama"})
    with pytest.raises(UsageError):
        import_gguf(path, **kwargs)


# --- synthetic GGUFs of every supported architecture --------------------------------------------

TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TINY_MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a"]
TINY_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _tiny_vocab() -> list[str]:
    tokens = TINY_SPECIALS + list(bytes_to_unicode().values())
    return tokens + [m.replace(" ", "") for m in TINY_MERGES]


def _tiny_config(arch: str, *, tied: bool) -> dict:
    config = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=96, num_attention_heads=4,
                  num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=len(_tiny_vocab()), rope_theta=10000.0,
                  max_position_embeddings=512, tie_word_embeddings=tied, head_dim=16)
    if arch == "gemma3":
        # six layers: mlx-lm's gemma3_text needs one full sliding-window pattern (5 local + 1 global)
        config.update(num_hidden_layers=6, query_pre_attn_scalar=16, sliding_window=512, sliding_window_pattern=6,
                      rope_local_base_freq=10000.0, rms_norm_eps=1e-6)
    return {"model_type": ARCHES[arch].model_type, **config}


def _gguf_name(arch, module_path: str) -> str:
    top = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    if module_path in top:
        return top[module_path]
    layer, rest = re.match(r"model\.layers\.(\d+)\.(.+)", module_path).groups()
    inverse = {v: k for k, v in arch.layer_names.items()}
    if arch.gguf_name == "gemma3":
        inverse["post_attention_layernorm"] = "post_attention_norm"
    return f"blk.{layer}.{inverse[rest]}"


def _write_tiny_gguf(path: Path, arch_name: str, *, tied: bool = False, rope_freqs=None):
    """A random mlx-lm model of the architecture, exported the way llama.cpp lays out GGUF tensors."""
    import importlib

    from mlx_lm.gguf import permute_weights

    arch = ARCHES[arch_name]
    config = _tiny_config(arch_name, tied=tied)
    module = importlib.import_module(f"mlx_lm.models.{arch.model_type}")
    mx.random.seed(7)
    model = module.Model(module.ModelArgs.from_dict(config))
    if arch_name == "gemma3" and tied:
        model.sanitize({})  # drops lm_head
    # random norms too, so a missed +1 shift or a wrong norm name shows in the logits
    params = {k: mx.random.normal(v.shape) * 0.5 for k, v in tree_flatten(model.parameters())}
    model.load_weights(list(params.items()))
    tensors = {}
    for name, value in params.items():
        module_path, suffix = name.rsplit(".", 1)
        if arch.permute_qk and module_path.endswith("q_proj"):
            value = permute_weights(value, config["num_attention_heads"], config["num_attention_heads"])
        elif arch.permute_qk and module_path.endswith("k_proj"):
            value = permute_weights(value, config["num_attention_heads"], config["num_key_value_heads"])
        if arch.norm_shift and module_path.endswith("norm"):
            value = value + arch.norm_shift
        tensors[f"{_gguf_name(arch, module_path)}.{suffix}"] = value
    if rope_freqs is not None:
        tensors["rope_freqs.weight"] = mx.array(rope_freqs, dtype=mx.float32)
    u32 = lambda v: mx.array(v, dtype=mx.uint32)  # noqa: E731
    f32 = lambda v: mx.array(v, dtype=mx.float32)  # noqa: E731
    a = arch.gguf_name
    metadata = {
        "general.architecture": a,
        "general.name": f"tiny-{a}",
        f"{a}.block_count": u32(config["num_hidden_layers"]),
        f"{a}.embedding_length": u32(config["hidden_size"]),
        f"{a}.feed_forward_length": u32(config["intermediate_size"]),
        f"{a}.attention.head_count": u32(config["num_attention_heads"]),
        f"{a}.attention.head_count_kv": u32(config["num_key_value_heads"]),
        f"{a}.attention.key_length": u32(config["head_dim"]),
        f"{a}.attention.layer_norm_rms_epsilon": f32(config["rms_norm_eps"]),
        f"{a}.rope.freq_base": f32(config["rope_theta"]),
        f"{a}.context_length": u32(config["max_position_embeddings"]),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.tokens": _tiny_vocab(),
        "tokenizer.ggml.merges": TINY_MERGES,
        "tokenizer.ggml.token_type": mx.array([3] * 3 + [1] * (len(_tiny_vocab()) - 3), dtype=mx.int32),
        "tokenizer.ggml.eos_token_id": u32(2),
        "tokenizer.ggml.padding_token_id": u32(0),
        "tokenizer.chat_template": TINY_TEMPLATE,
    }
    if a == "gemma3":
        metadata[f"{a}.attention.sliding_window"] = u32(512)
    mx.save_gguf(str(path), tensors, metadata)
    return model


@pytest.mark.parametrize("arch,tied", [("llama", False), ("llama", True), ("qwen2", False), ("qwen3", True),
                                       ("gemma3", True)])
def test_synthetic_gguf_matches_mlx_lm_logits(tmp_path, arch, tied):
    from mlx_lm import load

    reference = _write_tiny_gguf(tmp_path / f"{arch}.gguf", arch, tied=tied)
    out = tmp_path / "out"
    config = write_gguf_model(tmp_path / f"{arch}.gguf", out)
    assert config["model_type"] == ARCHES[arch].model_type
    model, tokenizer = load(str(out))
    tokens = mx.array([tokenizer.encode("the cat in a hat")])
    expected, got = reference(tokens), model(tokens)
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-4, atol=1e-4)
    assert tokenizer.decode(tokenizer.encode("the cat")) == "the cat"
    assert set(tokenizer.eos_token_ids) == {2, 0}  # eos, plus <|endoftext|> as an end-of-turn control token


def test_synthetic_f32_gguf_stays_float32_and_quantize_gguf_is_gone(tmp_path):
    _write_tiny_gguf(tmp_path / "f.gguf", "qwen3")
    notes = []
    config = write_gguf_model(tmp_path / "f.gguf", tmp_path / "out", note=notes.append)
    assert "quantization" not in config and config["torch_dtype"] == "float32"  # an F32 file keeps its class
    assert notes == ["GGUF file: 16 F32 → float32: the file's own size class (--quantize 4|8 or --dtype to choose)"]
    with pytest.raises(UsageError) as excinfo:
        write_gguf_model(tmp_path / "f.gguf", tmp_path / "out2", quantize="gguf")
    assert "default" in excinfo.value.message


def test_llama3_rope_freqs_become_rope_scaling(tmp_path):
    from mlx_lm.models.rope_utils import Llama3RoPE

    scaling = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    rope = Llama3RoPE(16, base=10000.0, scaling_config=scaling)
    plain = 10000.0 ** (mx.arange(0, 16, 2) / 16)
    factors = (rope._freqs / plain).tolist()  # what llama.cpp writes as rope_freqs.weight
    recovered = llama3_rope_scaling(factors, 16, 10000.0)
    assert recovered["factor"] == pytest.approx(8.0) and recovered["rope_type"] == "llama3"
    _write_tiny_gguf(tmp_path / "l3.gguf", "llama", rope_freqs=factors)
    config = write_gguf_model(tmp_path / "l3.gguf", tmp_path / "out")
    assert config["rope_scaling"]["rope_type"] == "llama3"
    assert config["rope_scaling"]["factor"] == pytest.approx(8.0)


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2), (9, 3)])
def test_unpermute_inverts_mlx_lm_gguf_permutation(heads, kv_heads):
    from mlx_lm.gguf import permute_weights

    head_dim, hidden = 8, 12
    q = mx.random.normal((heads * head_dim, hidden))
    k = mx.random.normal((kv_heads * head_dim, hidden))
    assert mx.array_equal(unpermute_rows(permute_weights(q, heads, heads), heads), q)
    assert mx.array_equal(unpermute_rows(permute_weights(k, heads, kv_heads), kv_heads), k)
    bias = mx.random.normal((heads * head_dim,))
    assert mx.array_equal(unpermute_rows(permute_weights(bias, heads), heads), bias)
