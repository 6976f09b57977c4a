"""The `epochal` command (`python -m epochal_client` runs it too)."""

from epochal_client.cli.main import main

__all__ = ["main"]
