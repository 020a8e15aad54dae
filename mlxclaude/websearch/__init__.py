"""Web search run by the server for the `web_search_…` server tool: config.toml's [web_search] table
(config.py) and the providers it names (providers.py)."""
