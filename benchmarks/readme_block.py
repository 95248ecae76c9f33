"""The benchmarks write their tables into README.md with the CLI's block writer
(:func:`musicgen_app.cli.readme_block.write_block`)."""

from __future__ import annotations

from musicgen_app.cli.readme_block import README, write_block

__all__ = ["README", "print_and_write", "write_block"]


def print_and_write(name: str, text: str, readme: bool) -> None:
    """Print a benchmark's table; with ``readme``, also write it into README's block ``name``
    under the command line that made it."""
    import sys
    from pathlib import Path

    print(text)
    if readme:
        cmd = " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
        write_block(name, f"`{cmd.strip()}`:\n\n{text}")
