"""A musician's working session in the real `musicgen gui` process on a virtual X screen (see
tests/session_driver.py): 200 mouse edits each saved with Ctrl+S, undo and redo runs, 10 Continue
cycles, Settings ▸ Devices, save, quit, open again, edit on. The window must not slow down over
the session (issue 9: the bar-line cache doubled at every edit and froze it after ~15 edits),
must stay under 1 GB, and must never show a traceback."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from session_driver import Session, assert_quiet, run_or_skip, summary

pytestmark = [pytest.mark.gui, pytest.mark.slow]

EDITS = 200
RSS_LIMIT_MB = 1024
#: Wall-clock noise allowed on top of the 2x bound: on a shared 2-core machine other programs can
#: hold both cores for seconds (a runaway like issue 9's takes seconds per edit). The UI thread's
#: own CPU time per edit, which other programs do not inflate, must meet the 2x bound with 5 ms.
NOISE_S = 0.1
CPU_NOISE_S = 0.005


def test_a_working_session_stays_fast_small_and_quiet(tmp_path: Path) -> None:
    result = run_or_skip(lambda display: Session(tmp_path / "session", display, edits=EDITS, cycles=10))
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
    assert_quiet(result)
