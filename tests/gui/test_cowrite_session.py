"""A co-writing session in the real `musicgen gui` process on a virtual X screen (see
tests/cowrite_driver.py): a multi-track MIDI file from another program opened and saved as a
project, then eight cycles of Accompany (a save pressed while the take streams), Fill of two
bars, a typed chord, undo and redo, each checked in the saved project; Export MIDI; quit and open
again. The melody must never change but where a fill was accepted, the UI thread must never wait
on the model, Accompany must not slow down over the session, and nothing may show a traceback."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from cowrite_driver import CowriteResult, CowriteSession
from session_driver import assert_quiet, run_or_skip, summary

pytestmark = [pytest.mark.gui, pytest.mark.slow]

CYCLES = 8
RSS_LIMIT_MB = 1024
#: a save pressed while a take is written and streamed: the UI thread must answer it as at rest
#: (a save takes tens of ms); seconds would mean it waited on the model
SAVE_WHILE_STREAMING_S = 2.0
NOISE_S = 0.5


def test_a_cowriting_session_keeps_the_melody_and_stays_responsive(tmp_path: Path) -> None:
    result = run_or_skip(lambda display: CowriteSession(tmp_path / "cowrite", display, cycles=CYCLES))
    assert isinstance(result, CowriteResult)
    print(result.source)
    print(summary(result))
    # every step's saved project was read back and checked: the first save, Accompany, Fill and
    # the chord of every cycle, the undo-redo runs, the project opened again
    assert result.checks == 1 + 3 * CYCLES + CYCLES // 2 + 1
    assert result.accompaniments_accepted == sum(k % 4 != 1 for k in range(CYCLES - 1))  # reject: 1 of 4
    assert result.fills_accepted == CYCLES // 2
    assert result.chords_typed == CYCLES
    assert result.exported_tracks >= 3 + result.accompaniments_accepted
    assert result.restored_takes == 2  # the last Accompany + Again, pending at quit, came back
    assert max(result.saves_while_streaming) < SAVE_WHILE_STREAMING_S, result.saves_while_streaming
    takes = result.accompany_takes
    assert statistics.median(takes[-3:]) <= 2 * statistics.median(takes[:3]) + NOISE_S, takes
    assert result.peak_rss_mb < RSS_LIMIT_MB, summary(result)
    assert_quiet(result)
