"""Write the example sketches in resources/examples/ (the first-launch screen offers them).

Each is a short original sketch, written note by note here so that anyone can change one and
run ``python scripts/make_examples.py`` again; the output is the same bytes every run.

- folk_tune.mid: a jig in D major (6/8), flute, eight bars to continue with the melody models.
- pop_hook.mid: a four-bar hook in A minor over Am-F-C-G, lead synth and electric piano.
- chorale_opening.mid: the first phrase of a four-voice chorale in G major (SATB, choir).
- drum_groove.mid: two bars of a rock groove on channel 10 (kick, snare, hats, crash).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import (
    DRUM_CHANNEL,
    KeySignature,
    Note,
    Song,
    TempoChange,
    TimeSignature,
    Track,
)

logger = logging.getLogger(__name__)

Q = 480  # ticks per quarter
OUT = Path(__file__).resolve().parents[1] / "resources" / "examples"
NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch(name: str) -> int:
    """``"F#4"`` -> 66 (C4 = 60)."""
    letter, rest = name[0], name[1:]
    pc = NAMES[letter]
    while rest and rest[0] in "#b":
        pc += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    return 12 * (int(rest) + 1) + pc


def line(
    spec: str, *, start: int = 0, unit: int = Q // 2, velocity: int = 90, channel: int = 0
) -> list[Note]:
    """Notes from ``"D4:2 F#4 A4 r:1 ..."``: a pitch (or ``r`` for a rest) and a length in ``unit``s."""
    notes = []
    t = start
    for word in spec.split():
        name, _, length = word.partition(":")
        ticks = int(float(length or 1) * unit)
        if name != "r":
            accent = velocity + (12 if t % (unit * 3) == 0 else 0)
            notes.append(Note(t, pitch(name), t + ticks - 10, min(127, accent), channel))
        t += ticks
    return notes


def folk_tune() -> Song:
    """A jig in D major, 6/8: eighth notes in groups of three."""
    tune = (
        (
            "D4 F#4 A4 d5:2 A4 "  # bar 1
            "B4 A4 F#4 G4:2 E4 "  # 2
            "D4 F#4 A4 B4 A4 F#4 "  # 3
            "E4:3 E4 F#4 G4 "  # 4
            "A4 F#4 D4 G4 E4 C#4 "  # 5
            "D4 F#4 A4 d5 c#5 B4 "  # 6
            "A4 F#4 E4 D4 E4 F#4 "  # 7
            "D4:3 r:3"  # 8
        )
        .replace("d5", "D5")
        .replace("c#5", "C#5")
    )
    notes = line(tune, unit=Q // 2, velocity=84)
    return Song(
        resolution=Q,
        title="Folk tune",
        tempos=[TempoChange(0, round(60_000_000 / 180))],  # 180 eighths a minute: a lively jig
        time_signatures=[TimeSignature(0, 6, 8)],
        key_signatures=[KeySignature(0, "D")],
        tracks=[Track(name="Flute", program=73, notes=notes)],
    )


def pop_hook() -> Song:
    """A hook in A minor over Am-F-C-G, one chord per bar."""
    hook = (
        "r:1 E5 E5 D5 C5:2 A4:2 "  # Am
        "r:1 C5 C5 D5 C5:2 A4:1 G4:1 "  # F
        "r:1 E5 E5 G5 E5:2 D5:1 C5:1 "  # C
        "D5:3 C5:1 B4:4"  # G
    )
    melody = line(hook, unit=Q // 2, velocity=96)
    chords = []
    for bar, names in enumerate(
        (("A3", "C4", "E4"), ("F3", "A3", "C4"), ("G3", "C4", "E4"), ("G3", "B3", "D4"))
    ):
        for beat in range(0, 4, 2):
            t = bar * 4 * Q + beat * Q
            chords += [Note(t, pitch(n), t + 2 * Q - 20, 70, 1) for n in names]
    bass = []
    for bar, root in enumerate(("A2", "F2", "C3", "G2")):
        t = bar * 4 * Q
        bass += [
            Note(t, pitch(root), t + Q * 3 // 2 - 20, 92, 2),
            Note(t + Q * 3 // 2, pitch(root), t + 2 * Q - 20, 80, 2),
        ]
        bass += [Note(t + 2 * Q, pitch(root), t + 4 * Q - 20, 88, 2)]
    return Song(
        resolution=Q,
        title="Pop hook",
        tempos=[TempoChange(0, round(60_000_000 / 100))],
        key_signatures=[KeySignature(0, "Am")],
        tracks=[
            Track(name="Hook", program=80, channel=0, notes=melody),
            Track(name="Keys", program=4, channel=1, notes=chords),
            Track(name="Bass", program=33, channel=2, notes=bass),
        ],
    )


def chorale_opening() -> Song:
    """The first phrase of a chorale in G major: I V/vi vi IV | I/5 V I (a fermata at the end)."""
    voices = {
        "Soprano": ("G4:2 A4:2 B4:2 B4:2 C5:2 B4:2 A4:4", 0, 52),
        "Alto": ("D4:2 E4:2 D4:2 G4:2 G4:2 G4:1 F#4:1 D4:4", 1, 52),
        "Tenor": ("B3:2 C4:2 B3:2 D4:2 E4:2 D4:2 D4:2 C4:2", 2, 52),
        "Bass": ("G3:2 C3:2 G2:2 G3:2 C3:2 D3:2 D3:4", 3, 52),
    }
    tracks = [
        Track(name=name, program=program, channel=ch, notes=line(spec, unit=Q // 2, velocity=76, channel=ch))
        for name, (spec, ch, program) in voices.items()
    ]
    return Song(
        resolution=Q,
        title="Chorale opening",
        tempos=[TempoChange(0, round(60_000_000 / 72))],
        key_signatures=[KeySignature(0, "G")],
        tracks=tracks,
    )


def drum_groove() -> Song:
    """Two bars of a rock groove: kick on 1 and 3 (and the and of 3), snare on 2 and 4, eighth hats."""
    kick, snare, closed, open_hat, crash = 36, 38, 42, 46, 49
    notes = []
    for bar in range(2):
        t0 = bar * 4 * Q
        for eighth in range(8):
            t = t0 + eighth * Q // 2
            hat = open_hat if (bar == 1 and eighth == 7) else closed
            notes.append(Note(t, hat, t + Q // 4, 100 if eighth % 2 == 0 else 72, DRUM_CHANNEL))
        for beat_eighths in (0, 4, 5) if bar == 0 else (0, 3, 4):
            t = t0 + beat_eighths * Q // 2
            notes.append(Note(t, kick, t + Q // 4, 112, DRUM_CHANNEL))
        for beat in (1, 3):
            t = t0 + beat * Q
            notes.append(Note(t, snare, t + Q // 4, 108, DRUM_CHANNEL))
    notes.append(Note(0, crash, Q, 96, DRUM_CHANNEL))
    return Song(
        resolution=Q,
        title="Drum groove",
        tempos=[TempoChange(0, round(60_000_000 / 110))],
        tracks=[Track(name="Drums", channel=DRUM_CHANNEL, is_drum=True, notes=sorted(notes))],
    )


EXAMPLES = {
    "folk_tune.mid": folk_tune,
    "pop_hook.mid": pop_hook,
    "chorale_opening.mid": chorale_opening,
    "drum_groove.mid": drum_groove,
}


def main(out: Path = OUT) -> None:
    """Write every example into ``out`` (resources/examples/ by default)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, make in EXAMPLES.items():
        song = make()
        song.sort()
        write_midi(song, out / name)
        print(f"{out / name}: {song.note_count} notes, {len(song.tracks)} track(s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
