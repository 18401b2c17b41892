"""Dataset adapters: each reads a public dataset layout into the standard metadata table."""
