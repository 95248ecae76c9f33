"""The accompaniment styles and the track each writes (no torch: the GUI reads this on its thread).

* ``piano``: the learned POP909 piano texture (model ``accompany-pop909``);
* ``bass``: the lowest line of that texture, moved into the bass register (E1..E3);
* ``chords``: block chords on the chords (predicted or given);
* ``satb``: alto, tenor and bass under a soprano (model ``accompany-chorales``).
"""

from __future__ import annotations

from musicgen_app.core.song import Song, Track
from musicgen_app.errors import GenerationError

STYLES = ("piano", "chords", "bass", "satb")
DEFAULT_MODELS = {
    "piano": "accompany-pop909",
    "chords": "accompany-pop909",
    "bass": "accompany-pop909",
    "satb": "accompany-chorales",
}
#: The new track: its name and General MIDI program, per style.
TRACK_NAMES = {
    "piano": "Piano accompaniment",
    "chords": "Chords",
    "bass": "Bass",
    "satb": "Alto, tenor, bass",
}
PROGRAMS = {"piano": 0, "chords": 0, "bass": 32, "satb": 52}  # Acoustic Grand, Acoustic Bass, Choir Aahs


def check_style(style: str) -> str:
    """``style`` when it is one of :data:`STYLES` (raises GenerationError)."""
    if style not in STYLES:
        raise GenerationError(f"unknown accompaniment style '{style}' (one of {', '.join(STYLES)})")
    return style


def default_model(style: str) -> str:
    """The shipped model for ``style``."""
    return DEFAULT_MODELS[check_style(style)]


def accompaniment_track(song: Song, style: str) -> Track:
    """An empty track for ``style``'s accompaniment: its name (numbered when the song already has
    a track of that name: a second accompaniment kept beside the first), GM program and a free
    channel."""
    used = {t.channel for t in song.tracks}
    channel = next((c for c in range(16) if c != 9 and c not in used), 0)
    base = TRACK_NAMES[check_style(style)]
    names = {t.name for t in song.tracks}
    name = next(n for n in (base, *(f"{base} {k}" for k in range(2, len(names) + 3))) if n not in names)
    return Track(name=name, program=PROGRAMS[style], channel=channel)
