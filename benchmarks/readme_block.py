"""The benchmarks write their tables into README.md with the CLI's block writer
(:func:`musicgen_app.cli.readme_block.write_block`)."""

from __future__ import annotations

from musicgen_app.cli.readme_block import README, write_block

__all__ = ["README", "write_block"]
