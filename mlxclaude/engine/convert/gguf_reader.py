"""Reading GGUF files with llama.cpp's own Python reader (the ``gguf`` package).

``gguf.GGUFReader`` maps the file and parses the metadata and tensor index; the tensor data stays
on disk until asked for. ``GgufFile.rows`` dequantizes one tensor a slice of rows at a time with
``gguf.quants.dequantize``, which implements every GGML block type in numpy (K-quants, i-quants,
Q4_0 … Q8_0, F16/BF16), so memory stays bounded by the slice, not the model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mlxclaude.errors import MlxClaudeError

ROWS_CHUNK_ELEMENTS = 1 << 22  # float32 values dequantized at once (16 MB; the quantizer needs a few times that)


class GgufImportError(MlxClaudeError):
    """A GGUF file that cannot be imported (not GGUF, unsupported architecture, bad metadata...)."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type_name: str  # GGML type: "Q4_K", "F16", ...
    shape: tuple[int, ...]  # numpy / mlx order (rows first), the reverse of GGUF's ne[]


class GgufFile:
    """A GGUF file: plain-Python metadata and lazily dequantized tensors."""

    def __init__(self, path: Path | str):
        import gguf

        self.path = Path(path)
        try:
            self._reader = gguf.GGUFReader(self.path, "r")
        except Exception as exc:  # ValueError / struct errors / an unknown type id from a newer llama.cpp
            raise GgufImportError(
                f"could not read {self.path.name}: {exc}",
                hint="the file may be truncated, or use a GGUF feature newer than the installed gguf package "
                     "(pip install -U gguf); re-download it, or import the original Hugging Face model",
            ) from exc
        self.metadata: dict[str, Any] = {
            key: field.contents() for key, field in self._reader.fields.items() if not key.startswith("GGUF.")
        }
        self._tensors = {t.name: t for t in self._reader.tensors}
        self.tensors: dict[str, TensorInfo] = {
            t.name: TensorInfo(t.name, t.tensor_type.name, tuple(int(n) for n in reversed(t.shape.tolist())))
            for t in self._reader.tensors
        }
        if int(self.metadata.get("split.count") or 1) > 1:
            raise GgufImportError(
                f"{self.path.name} is one part of a split GGUF ({self.metadata.get('split.count')} files)",
                hint="merge the parts first (llama-gguf-split --merge FIRST-PART.gguf merged.gguf), "
                     "then import the merged file")

    def type_counts(self) -> Counter:
        """How many tensors of each GGML type the file holds (2-D and larger: the matrices)."""
        return Counter(t.type_name for t in self.tensors.values() if len(t.shape) > 1)

    def file_type(self) -> str | None:
        """llama.cpp's name for the file's quantization ("Q4_K_M", "F16"...), from general.file_type."""
        import gguf

        value = self.metadata.get("general.file_type")
        try:
            kind = gguf.LlamaFileType(int(value))
        except (TypeError, ValueError):
            return None
        return None if kind == gguf.LlamaFileType.GUESSED else kind.name.removeprefix("MOSTLY_").removeprefix("ALL_")

    def read(self, name: str) -> np.ndarray:
        """The whole tensor as float32, in numpy order."""
        return np.concatenate(list(self.rows(name)), axis=0).reshape(self.tensors[name].shape)

    def rows(self, name: str, max_elements: int | None = None) -> Iterator[np.ndarray]:
        """float32 slices of whole rows, ``(n, cols)`` each (at most ``max_elements`` values, by default
        ROWS_CHUNK_ELEMENTS), of the tensor flattened to 2-D."""
        return (self.dequantize(name, raw) for raw in self.slices(name, max_elements))

    def slices(self, name: str, max_elements: int | None = None) -> Iterator[np.ndarray]:
        """The stored bytes (or values) of ``rows``' slices, not yet read from the file: views of the mapping,
        for ``dequantize`` on any thread."""
        max_elements = max_elements or ROWS_CHUNK_ELEMENTS
        info = self.tensors[name]
        cols = info.shape[-1]
        total_rows = int(np.prod(info.shape[:-1])) if len(info.shape) > 1 else 1
        data = self._tensors[name].data.reshape(total_rows, -1)
        step = max(1, max_elements // max(cols, 1))
        for start in range(0, total_rows, step):
            yield data[start:start + step]

    def dequantize(self, name: str, raw: np.ndarray) -> np.ndarray:
        """float32 ``(n, cols)`` values of a slice from ``slices``."""
        info = self.tensors[name]
        return self._dequantize(raw, info).reshape(-1, info.shape[-1])

    def _dequantize(self, data: np.ndarray, info: TensorInfo) -> np.ndarray:
        import gguf
        from gguf.quants import dequantize

        qtype = gguf.GGMLQuantizationType[info.type_name]
        try:
            values = dequantize(np.asarray(data), qtype)
        except NotImplementedError as exc:
            raise GgufImportError(
                f"{info.name} is stored as {info.type_name}, which the gguf package cannot dequantize",
                hint="upgrade it (pip install -U gguf), or use a GGUF of another quantization (Q4_K_M, Q8_0)",
            ) from exc
        return np.asarray(values, dtype=np.float32)
