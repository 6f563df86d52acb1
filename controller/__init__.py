"""controller: the thin deterministic shell: CLI, configuration, service wiring."""
