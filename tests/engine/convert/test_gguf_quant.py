"""The affine quantizer behind GGUF imports: mlx's packing, exact grids for GGUF's affine block types,
and no more error than ``mx.quantize`` for the others. ``gguf.quants.dequantize`` is the oracle of
what a GGUF block holds; ``mx.dequantize`` of what mlx will read."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlxclaude.engine.convert.gguf_quant import dequantize_affine, is_exact, pack, quantize_affine, size_class, stored, unpack
from support.gguf_files import QUANTIZABLE, random_blocks

ROWS, COLS = 64, 512


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.sqrt(((got - want) ** 2).mean() / (want ** 2).mean()))


def gguf_values(type_name: str, seed: int = 0) -> np.ndarray:
    """float32 values a GGUF tensor of ``type_name`` holds (``ROWS x COLS``)."""
    import gguf
    from gguf.quants import dequantize, quantize

    qtype = gguf.GGMLQuantizationType[type_name]
    base = np.random.default_rng(seed).standard_normal((ROWS, COLS)).astype(np.float32) * 0.05
    blocks = quantize(base, qtype) if type_name in QUANTIZABLE else random_blocks(type_name, ROWS, COLS, 0.05, seed)
    return dequantize(blocks, qtype)


def mlx_values(packed, scales, biases, bits, group_size) -> np.ndarray:
    return np.array(mx.dequantize(mx.array(packed), mx.array(scales).astype(mx.float32),
                                  mx.array(biases).astype(mx.float32), group_size=group_size, bits=bits))


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_packing_is_mlx_layout(bits):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, size=(3, 64)).astype(np.uint8)
    packed = pack(codes, bits)
    assert packed.dtype == np.uint32 and packed.shape == (3, 64 * bits // 32)
    assert np.array_equal(unpack(packed, bits, 64), codes)
    ones, zeros = np.ones((3, 2), np.float32), np.zeros((3, 2), np.float32)
    assert np.array_equal(mlx_values(packed, ones, zeros, bits, 32), codes.astype(np.float32))


@pytest.mark.parametrize("type_name", ["Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q8_0"])
def test_affine_gguf_blocks_import_exactly(type_name):
    """Q4_0 / Q4_1 / Q4_K / Q5_x / Q8_0 blocks are grids of 32 values: their MLX group-32 form holds the
    same values, up to the float16 rounding of scale and bias."""
    values = gguf_values(type_name)
    bits, group = size_class(type_name)
    assert group == 32 and is_exact(type_name, bits, group)
    packed, scales, biases = quantize_affine(values, bits, group)
    assert scales.dtype == np.float16 and scales.shape == (ROWS, COLS // 32)
    ours = dequantize_affine(packed, scales, biases, bits, group)
    np.testing.assert_array_equal(mlx_values(packed, scales, biases, bits, group), ours)
    assert rel_error(ours, values) < 5e-4
    # what mx.quantize would have done: re-fit every group, adding error of the quantization's own size
    refit = mx.quantize(mx.array(values).astype(mx.float16), group_size=group, bits=bits)
    refit_error = rel_error(np.array(mx.dequantize(*refit, group_size=group, bits=bits).astype(mx.float32)), values)
    assert refit_error > (0.001 if bits == 8 else 0.01)


@pytest.mark.parametrize("type_name", ["Q2_K", "Q3_K", "Q6_K", "IQ4_NL", "IQ4_XS"])
def test_other_types_lose_no_more_than_mx_quantize(type_name):
    values = gguf_values(type_name)
    bits, group = size_class(type_name)
    assert not is_exact(type_name, bits, group)
    ours = dequantize_affine(*quantize_affine(values, bits, group, find_grid=False), bits, group)
    reference = mx.quantize(mx.array(values).astype(mx.float16), group_size=group, bits=bits)
    theirs = np.array(mx.dequantize(*reference, group_size=group, bits=bits).astype(mx.float32))
    assert rel_error(ours, values) <= 1.1 * rel_error(theirs, values)
    assert rel_error(ours, values) < (0.08 if bits == 4 else 0.006)


def test_size_classes():
    assert {t: size_class(t) for t in ("Q2_K", "Q3_K", "Q4_0", "Q4_1", "Q4_K", "IQ4_NL", "IQ4_XS")} == \
        dict.fromkeys(("Q2_K", "Q3_K", "Q4_0", "Q4_1", "Q4_K", "IQ4_NL", "IQ4_XS"), (4, 32))
    assert size_class("Q5_0") == size_class("Q5_1") == size_class("Q5_K") == (5, 32)
    assert size_class("Q6_K") == (8, 64) and size_class("Q8_0") == (8, 32)
    assert size_class("F16") == size_class("BF16") == size_class("F32") == (None, None)


def test_symmetric_groups_with_a_positive_extreme_and_constant_groups():
    d = np.float32(np.float16(0.01))
    codes = np.arange(-7, 9, dtype=np.float32)  # Q4_0's grid with the largest magnitude positive: +8 d
    rows = np.stack([np.tile(codes, 2) * d, np.zeros(32, np.float32), np.full(32, 0.25, np.float32)])
    packed, scales, biases = quantize_affine(rows, 4, 32)
    np.testing.assert_array_equal(dequantize_affine(packed, scales, biases, 4, 32), rows)
    assert scales[0, 0] < 0  # the positive extreme sits on code 0 of a negated scale
    q8 = np.arange(-127, 129, 8, dtype=np.float32)[None] * d  # Q8_0's grid, codes -127 … 121 in steps of 8
    packed, scales, biases = quantize_affine(q8, 8, 32)
    np.testing.assert_array_equal(dequantize_affine(packed, scales, biases, 8, 32), q8)


def test_bfloat16_scales_are_what_mlx_stores():
    values = np.random.default_rng(3).standard_normal(4096).astype(np.float32)
    cast = np.array(mx.array(values).astype(mx.bfloat16).astype(mx.float32))
    np.testing.assert_array_equal(stored(values, "bfloat16"), cast)
    packed, scales, biases = quantize_affine(gguf_values("Q4_K"), 4, 32, "bfloat16")
    np.testing.assert_array_equal(stored(scales, "bfloat16"), scales)  # already on bfloat16's grid
