"""Remote serving engines: Anthropic Messages requests answered by an OpenAI-compatible server."""
