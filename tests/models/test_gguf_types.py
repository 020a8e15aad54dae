"""GGUF import of every common tensor type: files written in the test with llama.cpp's own writer from
the tiny random model (hidden size 256, so the 256-value K-quant blocks fit), imported at their size
class by default, and checked against the GGUF: weights against ``gguf.quants.dequantize``, greedy
tokens and logits against a float32 import of the same file."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from mlxclaude.engine.convert import gguf_reader
from mlxclaude.engine.convert.gguf import GgufFile, write_gguf_model
from mlxclaude.engine.convert.gguf_quant import is_exact
from mlxclaude.engine.convert.gguf_verify import gguf_text, verify_import
from support.gguf_files import ALL_TYPES, gguf_name, write_tiny_gguf

# type -> (bits, group size) of its matrices by default (None: float), and the largest import/GGUF size ratio
EXPECTED = {
    "F32": (None, None, 1.0), "F16": (None, None, 1.0), "BF16": (None, None, 1.0),
    "Q8_0": (8, 32, 1.0), "Q6_K": (8, 64, 1.2),
    "Q5_K": (5, 32, 1.05), "Q5_1": (5, 32, 1.0), "Q5_0": (5, 32, 1.1),
    "Q4_K": (4, 32, 1.0), "Q4_1": (4, 32, 1.0), "Q4_0": (4, 32, 1.0),
    "Q3_K": (4, 32, 1.25), "Q2_K": (4, 32, 1.55), "IQ4_NL": (4, 32, 1.0), "IQ4_XS": (4, 32, 1.05),
}
EXACT = ("F32", "F16", "BF16", "Q8_0", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0")
PROMPT = "Write a function that adds two numbers."


@pytest.fixture(scope="module")
def tiny256() -> Path:
    from tiny_model import ensure_tiny_model

    return ensure_tiny_model(hidden_size=256, num_heads=4)


@pytest.fixture(scope="module")
def built(tiny256, tmp_path_factory):
    """{type: (GGUF path, default import dir, float32 import dir)}, built on first use."""
    root = tmp_path_factory.mktemp("gguf-types")
    cache: dict[str, tuple[Path, Path, Path]] = {}

    def get(type_name: str) -> tuple[Path, Path, Path]:
        if type_name not in cache:
            path = root / f"tiny-{type_name}.gguf"
            write_tiny_gguf(path, tiny256, type_name)
            write_gguf_model(path, root / type_name)
            write_gguf_model(path, root / f"{type_name}-f32", dtype="float32")
            cache[type_name] = (path, root / type_name, root / f"{type_name}-f32")
        return cache[type_name]

    return get


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.sqrt(((got - want) ** 2).mean() / (want ** 2).mean()))


def imported_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """float32 weights of an imported model by GGUF name, quantized ones dequantized by mlx."""
    config = json.loads((model_dir / "config.json").read_text())
    quantization = config.get("quantization") or {}
    raw = {}
    for file in model_dir.glob("*.safetensors"):
        raw.update(mx.load(str(file)))
    out = {}
    for name, array in raw.items():
        module, _, suffix = name.rpartition(".")
        if suffix in ("scales", "biases"):
            continue
        if suffix == "weight" and f"{module}.scales" in raw:
            params = quantization.get(module, quantization)
            array = mx.dequantize(array, raw[f"{module}.scales"].astype(mx.float32),
                                  raw[f"{module}.biases"].astype(mx.float32),
                                  group_size=params["group_size"], bits=params["bits"])
        out[gguf_name(name)] = np.array(array.astype(mx.float32))
    return out


def greedy(model, ids: list[int], n: int = 8) -> list[int]:
    from mlx_lm.generate import generate_step

    return [int(t) for t, _ in generate_step(mx.array(ids), model, max_tokens=n)]


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_weights_match_the_gguf_within_the_target_precision(built, type_name):
    path, out, _ = built(type_name)
    bits, group, max_ratio = EXPECTED[type_name]
    config = json.loads((out / "config.json").read_text())
    if bits is None:
        assert "quantization" not in config and config["torch_dtype"] == {"F32": "float32", "F16": "float16",
                                                                          "BF16": "bfloat16"}[type_name]
    else:
        assert {k: config["quantization"][k] for k in ("bits", "group_size")} == {"bits": bits, "group_size": group}
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    assert size <= max_ratio * path.stat().st_size

    gguf_file = GgufFile(path)
    ours = imported_weights(out)
    for name, info in gguf_file.tensors.items():
        want = gguf_file.read(name)  # the oracle: gguf.quants.dequantize
        got = ours[name]
        if len(info.shape) == 1 or bits is None:
            np.testing.assert_array_equal(got, want, err_msg=name)  # norms, biases and floats as they are
            continue
        error = rel_error(got, want)
        if is_exact(type_name, bits, group):
            assert error < 5e-4, (name, error)  # the float16 rounding of scales and biases
        else:  # no worse than mlx's own quantization of the same values
            refit = mx.quantize(mx.array(want).astype(mx.float16), group_size=group, bits=bits)
            reference = rel_error(np.array(mx.dequantize(*refit, group_size=group, bits=bits).astype(mx.float32)),
                                  want)
            assert error <= 1.1 * reference, (name, error, reference)


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_greedy_tokens_match_a_float32_import(built, type_name):
    from mlx_lm import load

    _, out, f32 = built(type_name)
    model, tokenizer = load(str(out))
    reference, _ = load(str(f32))
    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True)
    expected = greedy(reference, ids)
    if type_name in EXACT:
        assert greedy(model, ids) == expected
        return
    # lossy types (Q6_K → 8-bit, Q2_K / Q3_K / IQ4 → 4-bit): logits close, same choice wherever it is clear.
    # Re-quantizing a non-affine type to 4 bits adds the noise of a fresh 4-bit quantization (~7% of the
    # weights: see the weights test), which this one-layer random model turns into 13-26% of its logits.
    tokens = mx.array([ids + expected])
    got, want = (np.array(m(tokens)[0].astype(mx.float32)) for m in (model, reference))
    error = np.sqrt(((got - want) ** 2).mean())
    assert error / want.std() < (0.03 if type_name == "Q6_K" else 0.35)
    top2 = np.sort(want, axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 4 * error
    assert clear.any() and (got.argmax(-1) == want.argmax(-1))[clear].all()


@pytest.mark.parametrize("type_name", ["Q4_K", "Q2_K", "IQ4_XS", "BF16"])
def test_import_check_agrees_with_the_gguf_vocabulary(built, type_name):
    path, out, _ = built(type_name)
    metadata = GgufFile(path).metadata
    report = verify_import(out, metadata)
    assert report.ok, report.problems
    assert 1 <= len(report.generated_ids) <= 4 and report.prompt_tokens > 10
    assert "agree with the GGUF vocabulary" in report.summary()


def test_the_check_catches_a_vocabulary_out_of_step(built, tmp_path):
    import shutil

    path, out, _ = built("Q4_K")
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    metadata = GgufFile(path).metadata
    tokenizer = json.loads((broken / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    pieces = ("Ġthe", "Ġcapital")  # pieces of the check's question, swapped
    assert all(piece in vocab for piece in pieces)
    ids = [vocab[piece] for piece in pieces]
    vocab[pieces[0]], vocab[pieces[1]] = ids[1], ids[0]
    (broken / "tokenizer.json").write_text(json.dumps(tokenizer))
    report = verify_import(broken, metadata)
    assert not report.ok
    assert "prompt tokens" in report.problems[0] and "GGUF vocabulary" in report.problems[0]
    assert gguf_text(ids, metadata) == " the capital"


@pytest.mark.parametrize("kwargs,expected", [
    ({"dtype": "float16"}, None),
    ({"quantize": 8}, (8, 32)),
    ({"quantize": 4, "dtype": "bfloat16"}, (4, 32)),
])
def test_asked_precision(built, tmp_path, kwargs, expected):
    path, _, f32 = built("Q4_K")
    notes = []
    config = write_gguf_model(path, tmp_path / "out", note=notes.append, **kwargs)
    assert "as asked" in notes[0]
    if expected is None:
        assert "quantization" not in config and config["torch_dtype"] == "float16"
    else:
        assert (config["quantization"]["bits"], config["quantization"]["group_size"]) == expected
    ours, reference = imported_weights(tmp_path / "out"), imported_weights(f32)
    bound = 5e-3 if kwargs.get("dtype") == "bfloat16" else 1e-3  # bfloat16 keeps 8 bits of a scale
    for name, want in reference.items():
        assert rel_error(ours[name], want) < bound, name  # Q4_K fits float16, 8-bit and 4-bit / group 32
    if kwargs.get("dtype") == "bfloat16":
        scales = mx.load(str(next((tmp_path / "out").glob("*.safetensors"))))["model.layers.0.mlp.up_proj.scales"]
        assert scales.dtype == mx.bfloat16


def test_rows_are_dequantized_a_slice_at_a_time(built, tmp_path, monkeypatch):
    path, out, _ = built("Q4_K")
    slices = []
    original = gguf_reader.GgufFile._dequantize

    def counting(self, data, info):
        slices.append(data.shape[0])
        return original(self, data, info)

    monkeypatch.setattr(gguf_reader, "ROWS_CHUNK_ELEMENTS", 256 * 100)  # 100 rows of 256 values
    monkeypatch.setattr(gguf_reader.GgufFile, "_dequantize", counting)
    write_gguf_model(path, tmp_path / "sliced")
    assert max(slices) <= 100 and len(slices) > 100  # token_embd alone is 82 slices
    whole, sliced = imported_weights(out), imported_weights(tmp_path / "sliced")
    for name in whole:
        np.testing.assert_array_equal(sliced[name], whole[name], err_msg=name)


@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_K"])
def test_llama_rows_unpermuted_in_quantized_form(tmp_path, type_name):
    """llama.cpp permutes llama's Q/K rows; the import undoes it on the packed weights, scales and biases."""
    import gguf
    from engine.convert.test_gguf_verify import spm_metadata
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.gguf import permute_weights
    from mlx_lm.models import llama

    from support.gguf_files import encode

    config = dict(model_type="llama", hidden_size=256, num_hidden_layers=1, intermediate_size=512,
                  num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=278,
                  rope_theta=10000.0, tie_word_embeddings=False, head_dim=64)
    mx.random.seed(3)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    top = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    writer = gguf.GGUFWriter(tmp_path / "llama.gguf", arch="llama")
    for key, value in (("block_count", 1), ("context_length", 512), ("embedding_length", 256),
                       ("feed_forward_length", 512), ("attention.head_count", 4), ("attention.head_count_kv", 2)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    for key, value in spm_metadata(arch="llama", add_space_prefix=True).items():  # a SentencePiece vocabulary
        if key.startswith("tokenizer."):
            add = {str: writer.add_string, bool: writer.add_bool, int: writer.add_uint32}.get(type(value))
            add(key, value) if add else writer.add_array(key, value)
    for index, (name, value) in enumerate(tree_flatten(model.parameters())):
        module, _, suffix = name.rpartition(".")
        array = np.array(value.astype(mx.float32))
        if module.endswith("q_proj"):
            array = np.array(permute_weights(value, 4, 4))
        elif module.endswith("k_proj"):
            array = np.array(permute_weights(value, 4, 2))
        base = top.get(module) or "blk.0." + layer[module.split(".", 3)[3]]
        if array.ndim == 2:
            data, raw_dtype = encode(array, type_name, index)
            writer.add_tensor(f"{base}.{suffix}", data, raw_dtype=raw_dtype)
        else:
            writer.add_tensor(f"{base}.{suffix}", array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    write_gguf_model(tmp_path / "llama.gguf", tmp_path / "q")
    write_gguf_model(tmp_path / "llama.gguf", tmp_path / "f32", dtype="float32")
    quantized, _ = load(str(tmp_path / "q"))
    reference, _ = load(str(tmp_path / "f32"))
    tokens = mx.array([[5, 17, 99, 250, 3, 42]])
    np.testing.assert_allclose(np.array(quantized(tokens)), np.array(reference(tokens)), atol=2e-3, rtol=2e-3)
    report = verify_import(tmp_path / "q", GgufFile(tmp_path / "llama.gguf").metadata)
    assert report.ok, report.problems
