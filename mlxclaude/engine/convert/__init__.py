"""Conversion into mlx-lm model directories: GGUF files (gguf.py, with the per-architecture tables in
gguf_arch.py and the tokenizer rebuilt in gguf_tokenizer.py) and Hugging Face safetensors directories
(safetensors.py, mlx-lm's own convert). The front-ends that find the files, name the model and pick
its directory are mlxclaude.models.gguf_import and mlxclaude.models.convert_import."""
