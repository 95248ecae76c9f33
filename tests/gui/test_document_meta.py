"""The window's copies of a song (snapshot for saving and playing, sub-songs for export, tracks
taken from another file) keep the lyrics and system-exclusive events a MIDI file brought."""

from __future__ import annotations

from pathlib import Path

from core.test_midi_meta import karaoke_file, meta_view

from musicgen_app.core.edits import add_notes
from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.song import Note
from musicgen_app.gui import fileio
from musicgen_app.gui.document import Document


def test_snapshot_save_and_export_keep_meta_events(tmp_path: Path) -> None:
    src = tmp_path / "a.mid"
    karaoke_file().save(src)
    doc = Document(fileio.load_file(src).song)
    doc.apply(add_notes(1, [Note(4800, 72, 5280, 70)]), "Draw note")
    snap = doc.snapshot()
    assert snap.meta == doc.song.meta and snap.meta is not doc.song.meta
    assert [t.meta for t in snap.tracks] == [t.meta for t in doc.song.tracks]
    proj, out = tmp_path / "a.mgproj", tmp_path / "b.mid"
    fileio.save_file(snap, {}, proj)
    fileio.export_midi(fileio.load_file(proj).song, out)
    assert meta_view(out) == meta_view(src)
    # exporting one track keeps its lyrics and the conductor's resets; importing tracks keeps them
    part = fileio.sub_song(snap, tracks=[0])
    assert part.tracks[0].meta == snap.tracks[0].meta and part.meta == snap.meta
    assert [t.meta for t in fileio.tracks_for(read_midi(src).song, 960)][1] == [
        m.__class__(2 * m.tick, m.kind, m.data) for m in snap.tracks[1].meta
    ]
