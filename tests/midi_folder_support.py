"""A small folder of real MIDI files for the training tests, written with the app's own MIDI writer:
tunes (a "lead" track of quarter notes), plus the three files a build must skip with a reason: a
text file named .mid, an empty file and a drums-only file; and :func:`pop909_songs`, real POP909
song folders of a chosen split copied aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import DRUM_CHANNEL, Note, Song, Track

SKIPPED = ("notes.mid", "empty.mid", "drums.mid")


def tune(pitches: list[int], name: str = "lead") -> Song:
    """A one-track song of quarter notes at 480 ticks per quarter."""
    notes = [Note(i * 480, p, i * 480 + 480, 90) for i, p in enumerate(pitches)]
    return Song(tracks=[Track(name=name, notes=notes)])


def midi_folder(root: Path, n: int = 12, length: int = 32, seed: int = 3) -> Path:
    """``n`` tunes of ``length`` notes under ``root`` (half in a subfolder) and the three files
    to skip; returns ``root``."""
    (root / "sub").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pitches = [int(p) for p in 60 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=length)]
        write_midi(tune(pitches), (root if i % 2 else root / "sub") / f"tune{i}.mid")
    (root / "notes.mid").write_text("this is a text file, not MIDI\n")
    (root / "empty.mid").write_bytes(b"")
    hits = [Note(i * 240, 36, i * 240 + 100, 100, DRUM_CHANNEL) for i in range(32)]
    write_midi(
        Song(tracks=[Track(name="kit", channel=DRUM_CHANNEL, is_drum=True, notes=hits)]), root / "drums.mid"
    )
    return root


POP909 = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"


def pop909_songs(root: Path, counts: dict[str, int]) -> Path:
    """Copy POP909 song folders (``../shared/data/pop909``) under ``root``: ``counts[split]`` of each
    split ("test", or "other" for the rest) by the dataset build's own split; returns ``root``."""
    import shutil

    from musicgen_app.ml import midi_data

    root.mkdir(parents=True, exist_ok=True)
    picked: dict[str, int] = dict.fromkeys(counts, 0)
    for folder in sorted(p for p in POP909.iterdir() if p.is_dir()):
        mids = midi_data.midi_files(folder)
        split = midi_data._content_split(midi_data._file_sha1(mids[0])) if mids else "other"
        split = "test" if split == "test" else "other"
        if picked.get(split, 0) < counts.get(split, 0):
            shutil.copytree(folder, root / folder.name)
            picked[split] += 1
        if picked == counts:
            break
    return root
