"""A musician's working session in the real `musicgen gui` process on a virtual X screen (see
tests/session_driver.py): 200 mouse edits each saved with Ctrl+S, undo and redo runs, 10 Continue
cycles, Settings ▸ Devices, save, quit, open again, edit on. The window must not slow down over
the session (issue 9: the bar-line cache doubled at every edit and froze it after ~15 edits),
must stay under 1 GB, and must never show a traceback."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from session_driver import NoXServerError, Session, summary, xvfb_display

pytestmark = [pytest.mark.gui, pytest.mark.slow]

EDITS = 200
RSS_LIMIT_MB = 1024
#: Wall-clock noise allowed on top of the 2x bound: on a shared 2-core machine other programs can
#: hold both cores for seconds (a runaway like issue 9's takes seconds per edit). The UI thread's
#: own CPU time per edit, which other programs do not inflate, must meet the 2x bound with 5 ms.
NOISE_S = 0.1
CPU_NOISE_S = 0.005


def test_a_working_session_stays_fast_small_and_quiet(tmp_path: Path) -> None:
    from musicgen_app.ml.registry import list_models

    if not list_models():
        pytest.skip("no trained model in models/")
    try:
        with xvfb_display() as display:
            result = Session(tmp_path / "session", display, edits=EDITS, cycles=10).run()
    except NoXServerError as exc:
        pytest.skip(str(exc))
    print(summary(result))
    edits = result.edit_latencies
    assert len(edits) >= EDITS
    first, last = statistics.median(edits[:20]), statistics.median(edits[-20:])
    assert last <= 2 * first + NOISE_S, summary(result)
    cpu = result.edit_ui_cpu
    assert statistics.median(cpu[-20:]) <= 2 * statistics.median(cpu[:20]) + CPU_NOISE_S, summary(result)
    assert result.peak_rss_mb < RSS_LIMIT_MB, summary(result)
    assert result.restored_takes == 2  # the takes pending at the save came back with the project
    assert len(result.phases["devices OK -> output"]) == 1
    for text in (result.stderr, result.log):
        at = text.find("Traceback")
        assert at < 0, text[max(0, at - 300) : at + 3000]
        assert "internal error" not in text.lower()
    assert result.crash_log == ""
