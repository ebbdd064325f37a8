"""The package version, in one place: pyproject.toml reads it, and so do the outputs that print it."""

__version__ = "0.5.0"
