"""Write a benchmark's table into README.md between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

Figures in the README are written by the command that measures them, never by hand: a benchmark
run with ``--readme`` replaces its block (appending it to the section named by ``after`` the first
time).
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def write_block(name: str, body: str, *, after: str = "## Known limits") -> None:
    """Replace (or insert before the heading ``after``) the README block ``name`` with ``body``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = README.read_text()
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif after in text:
        head, rest = text.split(after, 1)
        text = f"{head}{block}\n\n{after}{rest}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    README.write_text(text)
