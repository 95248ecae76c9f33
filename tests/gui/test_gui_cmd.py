"""`musicgen gui` refuses clearly where there is no screen."""

from __future__ import annotations

import os
import subprocess
import sys


def test_no_display_is_one_error_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run(
        [sys.executable, "-m", "musicgen_app.cli.main", "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: no screen") and "Traceback" not in r.stderr


def test_missing_file_is_one_error_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "musicgen_app.cli.main", "gui", "/nonexistent/song.mid"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("error: ") and "/nonexistent/song.mid: the file does not exist" in r.stderr
