"""GGUF tensor types → MLX weights: which precision each tensor gets, and the affine quantizer.

The size class of a GGUF tensor decides its MLX form when nothing else is asked (``size_class``):
Q4_0 / Q4_1 / Q4_K, the 2- and 3-bit K-quants and the 4-bit i-quants (IQ4_NL, IQ4_XS …) become MLX
4-bit, group 32; Q5_0 / Q5_1 / Q5_K MLX 5-bit, group 32; Q6_K and Q8_0 MLX 8-bit (group 64 for Q6_K,
32 for Q8_0); F16 / BF16 / F32 matrices stay floats of that type.

``quantize_affine`` writes mlx's affine format (``w = q * scale + bias`` per group, the codes of a row
one little-endian bit stream in uint32 words) from float32 numpy rows. GGUF's Q4_0 / Q4_1 / Q4_K /
Q5_0 / Q5_1 / Q5_K / Q8_0 blocks are affine grids of 32 values, so for every group whose values lie on
such a grid it finds that grid, and the import is exact up to the float16 rounding of scale and bias;
other groups get round-to-nearest min/max quantization. ``mx.quantize`` would instead re-fit every
group: on Q4_1 weights that alone adds as much error again as the 4-bit quantization had (measured:
7.7% relative RMS at group 32, where the grid fit adds 0.02%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOAT_TYPES = ("F32", "F16", "BF16")
EIGHT_BIT_TYPES = ("Q6_K", "Q8_0", "Q8_1", "Q8_K")
# Types whose blocks are affine grids of 32 values, with their bits: imported without loss into MLX
# group 32 of at least that many bits.
GRID_BITS = {"Q4_0": 4, "Q4_1": 4, "Q4_K": 4, "Q5_0": 5, "Q5_1": 5, "Q5_K": 5, "Q8_0": 8}


@dataclass(frozen=True)
class Target:
    """What one GGUF tensor becomes: ``bits`` None for a float tensor of ``dtype``; otherwise
    quantized with ``bits`` / ``group_size``, its scales and biases in ``dtype``."""

    bits: int | None
    group_size: int | None
    dtype: str

    def label(self) -> str:
        return self.dtype if self.bits is None else f"{self.bits}-bit/g{self.group_size}"


def float_dtype_of(type_name: str) -> str:
    return {"F16": "float16", "BF16": "bfloat16"}.get(type_name, "float32")


def size_class(type_name: str) -> tuple[int | None, int | None]:
    """(bits, group size) that keep a GGUF tensor type's size class; (None, None) for a float type."""
    if type_name in FLOAT_TYPES:
        return None, None
    if type_name in EIGHT_BIT_TYPES:
        return 8, 32 if type_name in GRID_BITS else 64
    return (5, 32) if GRID_BITS.get(type_name) == 5 else (4, 32)


def is_exact(type_name: str, bits: int | None, group_size: int | None) -> bool:
    """Whether MLX ``bits``/``group_size`` holds every value of a ``type_name`` tensor exactly."""
    return bits is not None and group_size == 32 and GRID_BITS.get(type_name, 99) <= bits


# --- the quantizer -------------------------------------------------------------------------------


def _fit(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, top: int, *, in_range: bool = False,
         tol: float = 2e-3) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``x`` on the grid ``q * scale + bias`` (q in 0..top, clipped), and which rows lie on it
    exactly. ``in_range``: the caller knows every code is within 0..top (min/max grids)."""
    scale = np.asarray(scale, dtype=np.float32)
    inverse = np.divide(1, scale, out=np.zeros_like(scale), where=scale != 0)
    raw = x - bias
    raw *= inverse
    codes = np.rint(raw)
    raw -= codes
    np.abs(raw, out=raw)
    exact = raw.max(axis=1) <= tol
    if not in_range:
        exact &= (codes.min(axis=1) >= 0) & (codes.max(axis=1) <= top)
    np.clip(codes, 0, top, out=codes)
    return codes, exact


def _grid_params(x: np.ndarray, bits: int, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scale, bias, codes) per group (row of ``x``): the grid the values already lie on where one is
    found (min/max, symmetric through zero, or the smallest step between values), else min/max."""
    top, half = (1 << bits) - 1, 1 << (bits - 1)
    lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    scale, bias = (hi - lo) / top, lo.copy()
    codes, exact = _fit(x, scale, bias, top, in_range=True)
    # the same grid read from the top (a negated scale) when only the top value survives float16:
    # Q4_0's -7d..8d groups, whose 8d is exact where -7d is not
    flip = exact & (stored(lo, dtype) != lo)[:, 0] & (stored(hi, dtype) == hi)[:, 0]
    if flip.any():
        scale[flip], bias[flip], codes[flip] = -scale[flip], hi[flip], top - codes[flip]
    todo = ~exact
    if todo.any():  # symmetric grids (Q4_0, Q8_0): the largest magnitude sits on a code 2^(bits-1) from 0
        amax = np.maximum(-lo, hi)
        positive = hi > -lo
        for steps, may_flip in ((half, True), (half - 1, False)):
            rows = np.flatnonzero(todo)
            if not len(rows):
                break
            s = amax[rows] / steps
            # q = x/s + half puts a negative extreme on code 0; a positive one needs the scale negated
            if may_flip:
                s = np.where(positive[rows], -s, s)
            b = -half * s
            sub_codes, ok = _fit(x[rows], s, b, top)
            scale[rows[ok]], bias[rows[ok]], codes[rows[ok]] = s[ok], b[ok], sub_codes[ok]
            todo[rows[ok]] = False
    rows = np.flatnonzero(todo)
    if len(rows):  # any other grid: the smallest gap between two values is the step (or half of it)
        sub = np.sort(x[rows], axis=1)
        lo_sub, span = sub[:, :1], sub[:, -1:] - sub[:, :1]
        gaps = np.diff(sub, axis=1)
        gap = np.where(gaps > span * 1e-4, gaps, np.inf).min(axis=1, keepdims=True)
        found = np.isfinite(gap)
        rows, lo_sub, span, gap = rows[found[:, 0]], lo_sub[found[:, 0]], span[found[:, 0]], gap[found[:, 0]]
        for divisor in (1, 2):
            step = gap / divisor
            ok = (np.rint(span / step) <= top)[:, 0]
            sub_codes, fits = _fit(x[rows], step, lo_sub, top)
            ok &= fits
            scale[rows[ok]], bias[rows[ok]], codes[rows[ok]] = step[ok], lo_sub[ok], sub_codes[ok]
            rows, lo_sub, span, gap = rows[~ok], lo_sub[~ok], span[~ok], gap[~ok]
            if not len(rows):
                break
    return scale, bias, codes  # groups on no grid keep min/max round-to-nearest


def quantize_affine(w: np.ndarray, bits: int, group_size: int, dtype: str = "float16", *,
                    find_grid: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(packed uint32 weight, scales, biases) of float32 ``w`` (..., cols), in mlx's affine format.

    ``find_grid`` looks for the grid each group's values already lie on (for dequantized GGUF
    blocks); without it every group is min/max round-to-nearest. Scales and biases are stored in
    ``dtype``; their rounding moves a value by at most a few thousandths of a step, which no code
    choice could undo.
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"cannot pack {bits}-bit codes")
    shape = w.shape
    if shape[-1] % group_size:
        raise ValueError(f"{shape[-1]} columns are not a multiple of the group size {group_size}")
    x = np.ascontiguousarray(w, dtype=np.float32).reshape(-1, group_size)
    top = (1 << bits) - 1
    if find_grid:
        scale, bias, codes = _grid_params(x, bits, dtype)
        scale_s, bias_s = stored(scale, dtype), stored(bias, dtype)
    else:  # round to nearest against the scale and bias as stored
        lo, hi = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
        scale_s, bias_s = stored((hi - lo) / top, dtype), stored(lo, dtype)
        codes, _ = _fit(x, scale_s, bias_s.astype(np.float32), top)
    packed = pack(codes.reshape(-1, shape[-1]).astype(np.uint8), bits)
    rows = shape[:-1]
    return (packed.reshape(*rows, shape[-1] * bits // 32),
            scale_s.reshape(*rows, shape[-1] // group_size),
            bias_s.reshape(*rows, shape[-1] // group_size))


def stored(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` as they will be stored in ``dtype``: float16 / float32 arrays, bfloat16 as float32
    rounded to bfloat16 (numpy has no bfloat16; mlx casts it exactly)."""
    if dtype == "float16":
        return values.astype(np.float16)
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "bfloat16":  # round to nearest even on the upper 16 bits
        raw = values.view(np.uint32)
        raw = (raw + np.uint32(0x7FFF) + ((raw >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
        return raw.view(np.float32)
    return values


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """uint32 words of ``(rows, cols)`` codes: each row one little-endian stream of ``bits``-bit fields
    (mlx's layout for every bit width; for 2, 4 and 8 bits the fields never straddle a word)."""
    rows, cols = codes.shape
    if 32 % bits == 0:
        per_word = 32 // bits
        fields = codes.astype(np.uint32).reshape(rows, -1, per_word)
        return np.bitwise_or.reduce(fields << (np.arange(per_word, dtype=np.uint32) * bits), axis=2)
    bit_planes = (codes[..., None] >> np.arange(bits, dtype=np.uint8)) & 1
    stream = np.packbits(bit_planes.reshape(rows, cols * bits), axis=1, bitorder="little")
    return np.ascontiguousarray(stream).view("<u4").astype(np.uint32)


def unpack(packed: np.ndarray, bits: int, cols: int) -> np.ndarray:
    """The codes of ``pack``."""
    rows = packed.shape[0]
    stream = np.unpackbits(np.ascontiguousarray(packed.astype("<u4")).view(np.uint8), axis=1, bitorder="little")
    planes = stream[:, : cols * bits].reshape(rows, cols, bits)
    return (planes << np.arange(bits, dtype=np.uint8)).sum(axis=2, dtype=np.uint32)


def dequantize_affine(packed: np.ndarray, scales: np.ndarray, biases: np.ndarray, bits: int,
                      group_size: int) -> np.ndarray:
    """float32 weights of a ``quantize_affine`` result (for error figures and tests)."""
    lead = packed.shape[:-1]
    cols = packed.shape[-1] * 32 // bits
    codes = unpack(packed.reshape(-1, packed.shape[-1]), bits, cols).reshape(*lead, -1, group_size)
    values = codes.astype(np.float32) * scales[..., None].astype(np.float32) + biases[..., None].astype(np.float32)
    return values.reshape(*lead, cols)
