"""Which backend serves a request: config.toml's [backends], [routes] and [fallbacks] (config.py), matching
Claude Code's model id to a route (router.py), and each backend's recent failures (health.py). PURE: no
I/O, no HTTP, no mlx."""
