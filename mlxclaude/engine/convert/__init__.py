"""Conversion into mlx-lm model directories: GGUF files (gguf.py, reading with llama.cpp's ``gguf``
package in gguf_reader.py, per-tensor precision and the affine quantizer in gguf_quant.py, the
per-architecture tables in gguf_arch.py, the tokenizer rebuilt in gguf_tokenizer.py and the check
after import in gguf_verify.py) and Hugging Face safetensors directories (safetensors.py, mlx-lm's
own convert). The front-ends that find the files, name the model and pick its directory are
mlxclaude.models.gguf_import (with mlxclaude.models.ollama and mlxclaude.models.lmstudio) and
mlxclaude.models.convert_import."""
