"""The `musicgen` dispatcher: help lists every subcommand; failures are one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys

from musicgen_app.cli.main import COMMANDS


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "musicgen_app.cli.main", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_subcommand() -> None:
    r = _run("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert name in r.stdout


def test_help_starts_without_torch_or_qt() -> None:
    code = (
        "import sys; from musicgen_app.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "sys.exit(1 if any(m.startswith(('torch', 'PySide6')) for m in sys.modules) else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_unknown_option_is_a_usage_error_not_a_traceback() -> None:
    r = _run("inspect", "--no-such-option")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
