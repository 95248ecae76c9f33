"""`musicgen play --loop A-B`: whole bars, counted as the song model counts them."""

from __future__ import annotations

import bisect
import random

import pytest

from musicgen_app.cli.play_cmd import SONG_LOOP, _bar_of, _bar_start, loop_ticks
from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.errors import MusicgenError


def test_bars_agree_with_song_bar_starts() -> None:
    rng = random.Random(3)
    for _ in range(200):
        ticks = sorted({rng.randrange(20_000) for _ in range(rng.randrange(5))})
        song = Song(
            resolution=rng.choice([1, 24, 96, 480]),
            time_signatures=[
                TimeSignature(t, rng.randrange(1, 13), rng.choice([1, 2, 4, 8, 128])) for t in ticks
            ],
        )
        starts = song.bar_starts(30_000)
        for k in range(1, min(len(starts), 40) + 1):
            assert _bar_start(song, k) == starts[k - 1]
        for tick in (rng.randrange(30_000) for _ in range(20)):
            assert _bar_of(song, tick) == bisect.bisect_right(starts, tick)


def test_loop_ticks() -> None:
    notes = [Note(i * 480, 60 + i, i * 480 + 400, 90) for i in range(8)]  # 2 bars of 4/4, ends at 3760
    song = Song(tracks=[Track(notes=notes)])
    assert loop_ticks(song, (1, 1)) == (0, 1920)
    assert loop_ticks(song, (2, 2)) == (1920, 3840)  # the whole last bar, not only up to the last note
    assert loop_ticks(song, (1, 9)) == (0, 3840)  # clipped to the song's bars
    assert loop_ticks(song, SONG_LOOP) == (0, 3760)  # no loop region: the whole song
    with pytest.raises(MusicgenError, match="only 2 bars"):
        loop_ticks(song, (3, 4))
    song.loop = (480, 960)
    assert loop_ticks(song, SONG_LOOP) == (480, 960)
    for bad in ((960, 480), (480, 480)):
        song.loop = bad
        with pytest.raises(MusicgenError, match="empty or reversed"):
            loop_ticks(song, SONG_LOOP)
