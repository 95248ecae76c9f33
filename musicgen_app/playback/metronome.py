"""The metronome: a drum track clicking every beat (an accent on each downbeat), played beside a
song by the window's playback and under a jam's answers (:mod:`musicgen_app.playback.jam`)."""

from __future__ import annotations

import logging

from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, Track

logger = logging.getLogger(__name__)

CLICK_HIGH, CLICK_LOW = 76, 77  # hi / lo wood block on the GM drum channel


def metronome_track(song: Song, end_tick: int) -> Track:
    """A drum track clicking every beat of ``song``'s bars up to ``end_tick`` (accent on the downbeat)."""
    notes: list[Note] = []
    for bar in song.bar_starts(end_tick):
        ts = song.time_signature_at(bar)
        beat = song.resolution * 4 // ts.denominator
        for k in range(ts.numerator):
            t = bar + k * beat
            if t >= end_tick:
                break
            pitch = CLICK_HIGH if k == 0 else CLICK_LOW
            notes.append(Note(t, pitch, t + beat // 4, 110 if k == 0 else 80, DRUM_CHANNEL))
    return Track(name="Metronome", channel=DRUM_CHANNEL, is_drum=True, notes=notes)
