"""GGUF files for tests, written with llama.cpp's own writer (``gguf.GGUFWriter``).

``write_tiny_gguf`` turns the tiny random Qwen2 model (tests/tiny_model.py) into a GGUF of one tensor
type: the types ``gguf.quants.quantize`` implements (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16) quantize the
model's own weights; for the others (the K-quants, IQ4_NL, IQ4_XS) ``random_blocks`` builds valid blocks
of random bits with sane float16 scale fields, scaled to the weights' spread, and
``gguf.quants.dequantize`` is the oracle of what they hold. The tokenizer goes in as llama.cpp's
convert_hf_to_gguf.py writes it (``tokenizer.ggml.*``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

QUANTIZABLE = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16")  # what gguf.quants.quantize implements
# byte offsets of the float16 scale fields (d, dmin) in each block (ggml-common.h)
F16_FIELDS = {"Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,),
              "IQ4_XS": (0,), "IQ4_NL": (0,)}
ALL_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0",
             "Q3_K", "Q2_K", "IQ4_NL", "IQ4_XS")

_QWEN2_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
                "post_attention_layernorm": "ffn_norm"}


def gguf_name(mlx_name: str) -> str:
    """``model.layers.0.self_attn.q_proj.weight`` -> ``blk.0.attn_q.weight``."""
    module, _, suffix = mlx_name.rpartition(".")
    top = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    if module in top:
        return f"{top[module]}.{suffix}"
    _, _, layer, rest = module.split(".", 3)
    return f"blk.{layer}.{_QWEN2_NAMES[rest]}.{suffix}"


def random_blocks(type_name: str, rows: int, cols: int, std: float, seed: int = 0) -> np.ndarray:
    """``(rows, bytes per row)`` uint8 blocks of ``type_name``: random quant bits and scale fields, with
    the float16 scales chosen so the dequantized values have standard deviation ``std``."""
    import gguf
    from gguf.quants import dequantize

    qtype = gguf.GGMLQuantizationType[type_name]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    fields = F16_FIELDS[type_name]
    for offset in fields:
        values = rng.uniform(0.5, 1.0, n_blocks).astype(np.float16)
        raw[:, offset:offset + 2] = values.view(np.uint8).reshape(n_blocks, 2)
    factor = std / dequantize(raw.reshape(rows, -1), qtype).std()
    for offset in fields:  # every value is linear in d and dmin: scaling them scales the tensor
        values = raw[:, offset:offset + 2].copy().view(np.float16)[:, 0].astype(np.float32) * factor
        raw[:, offset:offset + 2] = values.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, -1)


def encode(array: np.ndarray, type_name: str, seed: int) -> tuple[np.ndarray, object]:
    """(data for GGUFWriter.add_tensor, raw dtype) of float32 ``array`` stored as ``type_name``."""
    import gguf
    from gguf.quants import quantize

    qtype = gguf.GGMLQuantizationType[type_name]
    if type_name == "F32":
        return array.astype(np.float32), None
    if type_name == "F16":
        return array.astype(np.float16), None
    if type_name in QUANTIZABLE:
        return quantize(array.astype(np.float32), qtype), qtype
    return random_blocks(type_name, array.shape[0], array.shape[1], float(array.std()), seed), qtype


def tokenizer_metadata(model_dir: Path) -> dict:
    """``tokenizer.ggml.*`` of a byte-level BPE tokenizer.json, as convert_hf_to_gguf.py writes them."""
    data = json.loads((model_dir / "tokenizer.json").read_text())
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    by_id = {i: t for t, i in data["model"]["vocab"].items()}
    kinds = {}
    for added in data["added_tokens"]:
        by_id[added["id"]] = added["content"]
        kinds[added["id"]] = 3 if added["special"] else 4  # CONTROL, USER_DEFINED
    tokens = [by_id[i] for i in range(max(by_id) + 1)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    ids = {t: i for i, t in enumerate(tokens)}
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [kinds.get(i, 1) for i in range(len(tokens))],
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.eos_token_id": ids[config["eos_token"]],
        "tokenizer.ggml.padding_token_id": ids[config["pad_token"]],
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": config["chat_template"],
    }


def write_tiny_gguf(path: Path, model_dir: Path, type_name: str, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the tiny Qwen2 model in ``model_dir`` as a GGUF whose matrices are ``type_name`` (norms and
    biases F32, as llama.cpp keeps them); return the float32 weights it started from, by GGUF name."""
    import gguf
    import mlx.core as mx

    config = json.loads((model_dir / "config.json").read_text())
    weights = {gguf_name(k): np.array(v.astype(mx.float32))
               for k, v in mx.load(str(model_dir / "model.safetensors")).items()}
    writer = gguf.GGUFWriter(path, arch="qwen2")
    writer.add_name(f"tiny-{type_name}")
    file_type = {"F32": "ALL_F32", "Q3_K": "MOSTLY_Q3_K_M", "Q4_K": "MOSTLY_Q4_K_M", "Q5_K": "MOSTLY_Q5_K_M"}.get(
        type_name, f"MOSTLY_{type_name}")
    writer.add_file_type(gguf.LlamaFileType[file_type])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config["rope_theta"])
    for key, value in tokenizer_metadata(model_dir).items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        else:
            writer.add_array(key, value)
    for index, (name, array) in enumerate(sorted(weights.items())):
        if array.ndim == 2:
            data, raw_dtype = encode(array, type_name, seed + index)
            writer.add_tensor(name, data, raw_dtype=raw_dtype)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return weights
