"""The command line: a thin layer over the public API in `escalation.api`."""

from escalation.cli.app import app, main

__all__ = ["app", "main"]
