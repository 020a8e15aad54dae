"""Settings: the registry (registry.py), how values resolve and are stored (load.py), config.toml
(toml.py), the daemon's auth token (token.py) and byte sizes (units.py)."""
