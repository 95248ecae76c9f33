"""What is heard: a song with its track headers' mute, solo and volume applied.

:func:`audible_song` returns a copy to hand to the scheduler or the renderer. A muted track (or,
when any track is soloed, a track that is not) keeps its place but loses its notes, so track
indices stay valid. The volume is a fader on the track's own levels: every channel-volume
controller (CC 7) of the track is scaled by ``volume / 100``, and a track with notes but no CC 7
at its start gets one (a synth keeps a channel's volume between plays, and a controller reset
does not restore it), so 100 plays the track exactly as written and 0 silences it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from musicgen_app.core.song import DEFAULT_TRACK_VOLUME, ControlEvent, Song, Track

logger = logging.getLogger(__name__)

CC_VOLUME = 7
GM_DEFAULT_CHANNEL_VOLUME = 100  # what a GM synth's channel volume is after a reset


def is_audible(song: Song, index: int) -> bool:
    """Whether track ``index`` sounds given every track's mute and solo."""
    track = song.tracks[index]
    if any(t.solo for t in song.tracks):
        return track.solo and not track.mute
    return not track.mute


def _scaled(value: int, volume: int) -> int:
    return max(0, min(127, round(value * volume / DEFAULT_TRACK_VOLUME)))


def _faded(track: Track) -> Track:
    volume = track.volume
    controls = [
        replace(c, value=_scaled(c.value, volume))
        if c.kind == "control_change" and c.number == CC_VOLUME
        else c
        for c in track.controls
    ]
    if not any(c.kind == "control_change" and c.number == CC_VOLUME and c.tick == 0 for c in controls):
        channel = track.notes[0].channel if track.notes else track.channel
        start = ControlEvent(
            0, "control_change", CC_VOLUME, _scaled(GM_DEFAULT_CHANNEL_VOLUME, volume), channel
        )
        controls.insert(0, start)
    return replace(track, controls=controls)


def audible_song(song: Song) -> Song:
    """A copy of ``song`` as the track headers say it should sound (see the module's docstring)."""
    out = song.copy()
    tracks = []
    for i, track in enumerate(out.tracks):
        if not is_audible(song, i):
            track = replace(track, notes=[])
        if track.notes:  # also at 100: a synth keeps a channel's volume from the last play
            track = _faded(track)
        tracks.append(track)
    out.tracks = tracks
    return out
