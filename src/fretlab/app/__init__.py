"""User-facing commands: the ``fretlab`` CLI and ``fretlab predict``."""
