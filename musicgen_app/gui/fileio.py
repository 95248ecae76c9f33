"""File operations the window runs on task threads: open, save, export. No Qt here on purpose:
each function takes plain data (a song snapshot) and returns plain data or raises MusicgenError."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from musicgen_app.core.song import Note, Song, Track

logger = logging.getLogger(__name__)

PROJECT_SUFFIX = ".mgproj"
MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")
OPENABLE = (*MIDI_SUFFIXES, PROJECT_SUFFIX)


@dataclass
class Loaded:
    """What opening a file gave."""

    song: Song
    state: dict[str, Any] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)
    path: Path | None = None
    is_project: bool = False


def load_file(path: str | Path) -> Loaded:
    """Read a MIDI or project file (raises MidiImportError / ProjectError)."""
    from musicgen_app.core.project import load_any

    p = Path(path)
    r = load_any(p)
    return Loaded(
        song=r.song,
        state=dict(getattr(r, "state", None) or {}),
        repairs=list(getattr(r, "repairs", None) or []) + list(getattr(r, "notices", None) or []),
        path=p,
        is_project=p.suffix.lower() == PROJECT_SUFFIX,
    )


def save_file(song: Song, state: dict[str, Any], path: str | Path) -> Path:
    """Save as a project (atomic, keeps a .bak of the previous version)."""
    from musicgen_app.core.project import Project, save_project

    p = Path(path)
    save_project(Project(song=song, state=state), p)
    return p


def sub_song(
    song: Song, tracks: list[int] | None = None, notes: list[Note] | None = None, track: int = 0
) -> Song:
    """A copy of ``song`` with only some tracks, or only ``notes`` (of ``track``) when given."""
    if notes is not None:
        src = song.tracks[track]
        kept = [Track(src.name, src.program, src.channel, src.is_drum, sorted(notes), [])]
    else:
        idx = range(len(song.tracks)) if tracks is None else tracks
        kept = [t.copy() for i, t in enumerate(song.tracks) if i in idx]
    return Song(
        resolution=song.resolution,
        tracks=kept,
        tempos=list(song.tempos),
        time_signatures=list(song.time_signatures),
        key_signatures=list(song.key_signatures),
        markers=list(song.markers),
        loop=None,
        title=song.title,
        meta=list(song.meta),
        chords=list(song.chords),
    )


def tracks_for(song: Song, resolution: int) -> list[Track]:
    """``song``'s tracks at ``resolution`` ticks per quarter (rounded when it cannot be exact)."""
    from dataclasses import replace

    from musicgen_app.core.song import rescale

    if song.resolution == resolution:
        return [t.copy() for t in song.tracks]
    try:
        return rescale(song, resolution).tracks
    except ValueError:
        f = resolution / song.resolution
        out = []
        for t in song.tracks:
            notes = []
            for n in t.notes:
                start = round(n.start_tick * f)
                notes.append(replace(n, start_tick=start, end_tick=max(start + 1, round(n.end_tick * f))))
            controls = [replace(c, tick=round(c.tick * f)) for c in t.controls]
            meta = [replace(m, tick=round(m.tick * f)) for m in t.meta]
            out.append(Track(t.name, t.program, t.channel, t.is_drum, sorted(notes), sorted(controls), meta))
        return out


def export_midi(song: Song, path: str | Path) -> Path:
    """Write ``song`` as a standard MIDI file."""
    from musicgen_app.core.midi_io import write_midi

    p = Path(path)
    write_midi(song, p)
    return p


def export_wav(song: Song, path: str | Path, soundfont: str | None = None) -> Path:
    """Render ``song`` to a WAV file through FluidSynth."""
    from musicgen_app.playback.render import render_wav

    p = Path(path)
    render_wav(song, p, soundfont=soundfont or None)
    return p


CLIP_PREFIX = "musicgen-drag-"
CLIP_MAX_AGE_S = 24 * 3600.0


def clip_file(song: Song, name: str = "clip") -> Path:
    """Write ``song`` to a fresh temporary .mid (for dragging out of the window).

    The drop target may read the file any time after the drop, so it is left in place; folders of
    earlier drags older than a day are removed here.
    """
    remove_old_clips()
    folder = Path(tempfile.mkdtemp(prefix=CLIP_PREFIX))
    safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip() or "clip"
    return export_midi(song, folder / f"{safe}.mid")


def remove_old_clips(max_age_s: float = CLIP_MAX_AGE_S) -> int:
    """Delete the temporary folders of drags older than ``max_age_s``; how many went."""
    import shutil
    import time

    cutoff = time.time() - max_age_s
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(CLIP_PREFIX + "*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
                removed += 1
        except OSError as exc:  # another user's folder, or one being read right now
            logger.debug("cannot remove %s: %s", folder, exc)
    return removed
