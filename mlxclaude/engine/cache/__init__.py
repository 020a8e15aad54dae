"""A multi-entry token-prefix KV cache for the MLX engine, built for Claude Code's traffic.

- trie.py      radix trie over token ids (pure)
- store.py     entries, tiers, LRU, byte cap, per-session bookkeeping (pure)
- boundary.py  where the system+tools prefix ends and where messages start in a rendered prompt (no mlx)
- kv.py        mlx-lm cache objects: sizes, trimming, snapshots, chunked prefill
- persist.py   system+tools snapshots saved to and loaded from disk
- memory.py    the default byte cap (a share of available memory)
- prompt_cache.py  PromptCache: begin()/finish() around one generation

Import the mlx-bound parts from their modules: this package's import stays light (render.py uses boundary).
"""
