"""The `musicgen` command."""
