"""Write a measured table into README.md between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

Figures in the README are written by the command that measures them, never by hand: a command
run with ``--readme`` replaces its block (inserting it before the heading ``after`` the first time).
"""

from __future__ import annotations

import logging
from pathlib import Path

from musicgen_app.core import paths

logger = logging.getLogger(__name__)

README = paths.REPO_ROOT / "README.md"


def write_block(name: str, body: str, *, after: str = "## Known limits", readme: Path | None = None) -> Path:
    """Replace (or insert before the heading ``after``) the README block ``name`` with ``body``;
    returns the file written."""
    path = Path(readme) if readme is not None else README
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text()
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif after in text:
        head, rest = text.split(after, 1)
        text = f"{head}{block}\n\n{after}{rest}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
