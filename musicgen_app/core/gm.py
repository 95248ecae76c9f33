"""General MIDI names: the 128 instruments (programs) and the percussion map of channel 10.

No Qt, no torch. ``GM_PROGRAM_NAMES`` is the instrument list the track header offers;
``GM_DRUM_NAMES`` names the keys of a drum track (GM Level 1 percussion, keys 35-81).
"""

from __future__ import annotations

import logging

from musicgen_app.core.midi_io import GM_PROGRAM_NAMES
from musicgen_app.core.song import DRUM_CHANNEL, Track

logger = logging.getLogger(__name__)

__all__ = ["GM_DRUM_NAMES", "GM_PROGRAM_NAMES", "drum_name", "is_drum_track", "program_name"]

GM_DRUM_NAMES: dict[int, str] = {
    35: "Kick 2", 36: "Kick", 37: "Side Stick", 38: "Snare", 39: "Hand Clap", 40: "Snare 2",
    41: "Low Floor Tom", 42: "Closed Hat", 43: "High Floor Tom", 44: "Pedal Hat", 45: "Low Tom",
    46: "Open Hat", 47: "Low-Mid Tom", 48: "Hi-Mid Tom", 49: "Crash", 50: "High Tom", 51: "Ride",
    52: "China", 53: "Ride Bell", 54: "Tambourine", 55: "Splash", 56: "Cowbell", 57: "Crash 2",
    58: "Vibraslap", 59: "Ride 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga",
    63: "Open Hi Conga", 64: "Low Conga", 65: "High Timbale", 66: "Low Timbale", 67: "High Agogo",
    68: "Low Agogo", 69: "Cabasa", 70: "Maracas", 71: "Short Whistle", 72: "Long Whistle",
    73: "Short Guiro", 74: "Long Guiro", 75: "Claves", 76: "Hi Wood Block", 77: "Low Wood Block",
    78: "Mute Cuica", 79: "Open Cuica", 80: "Mute Triangle", 81: "Open Triangle",
}  # fmt: skip


def is_drum_track(track: Track) -> bool:
    """Whether ``track`` plays GM percussion (flagged as drums, or on channel 10)."""
    return track.is_drum or track.channel == DRUM_CHANNEL


def drum_name(pitch: int) -> str:
    """The GM percussion name of key ``pitch`` (empty outside the map)."""
    return GM_DRUM_NAMES.get(pitch, "")


def program_name(program: int) -> str:
    """The GM instrument name of ``program`` (0-127), numbered as a musician counts: "1 Acoustic…"."""
    if not 0 <= program < len(GM_PROGRAM_NAMES):
        return f"Program {program}"
    return f"{program + 1} {GM_PROGRAM_NAMES[program]}"
