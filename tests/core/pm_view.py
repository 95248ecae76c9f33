"""What an independent reader (pretty_midi) sees in a MIDI file, as comparable plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pretty_midi


def pm_view(path: str | Path) -> dict[str, Any]:
    """Instruments (name, program, drum flag, notes, controllers, pitch bends), tempo, meter, key.

    Identical copies of a meter or key at the same time (music21 writes the meter into every
    track) are listed once: they carry nothing more than one copy does.
    """
    pm = pretty_midi.PrettyMIDI(str(path))
    instruments = []
    for inst in pm.instruments:
        instruments.append(
            (
                inst.name,
                inst.program,
                inst.is_drum,
                sorted((round(n.start, 9), round(n.end, 9), n.pitch, n.velocity) for n in inst.notes),
                sorted((round(c.time, 9), c.number, c.value) for c in inst.control_changes),
                sorted((round(b.time, 9), b.pitch) for b in inst.pitch_bends),
            )
        )
    times, tempi = pm.get_tempo_changes()
    return {
        "resolution": pm.resolution,
        "instruments": sorted(instruments, key=lambda i: (i[0], i[1], i[2], i[3][:1])),
        "tempo": [(round(float(t), 9), round(float(q), 6)) for t, q in zip(times, tempi, strict=True)],
        "meter": _once([(m.numerator, m.denominator, round(m.time, 9)) for m in pm.time_signature_changes]),
        "key": _once([(k.key_number, round(k.time, 9)) for k in pm.key_signature_changes]),
        "end": round(pm.get_end_time(), 9),
    }


def _once(items: list[tuple]) -> list[tuple]:
    return list(dict.fromkeys(items))


def pm_notes(path: str | Path) -> list[tuple[int, float, float, int, bool]]:
    """Every note pretty_midi reads: (pitch, start s, end s, velocity, drum), sorted."""
    pm = pretty_midi.PrettyMIDI(str(path))
    return sorted(
        (n.pitch, round(n.start, 6), round(n.end, 6), n.velocity, inst.is_drum)
        for inst in pm.instruments
        for n in inst.notes
    )
