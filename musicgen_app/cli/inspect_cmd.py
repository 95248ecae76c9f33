"""`musicgen inspect FILE [--json]`: what a MIDI or project file holds, and every repair made.

Exit 0 when the file was read (repairs listed), 2 with one line ``error: ...`` when it was refused.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from typing import Any

from musicgen_app.core.midi_io import GM_PROGRAM_NAMES
from musicgen_app.core.project import LoadResult, load_any
from musicgen_app.core.song import MetaEvent, Song, TimeSignature

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen inspect`."""
    from musicgen_app.cli.argtypes import input_file

    parser.add_argument(
        "file", metavar="FILE", type=input_file(), help="a MIDI file (.mid) or a project (.mgproj)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")


def _bar_beat(song: Song, tick: int) -> tuple[int, int]:
    """(bar, beat), both from 1, of ``tick``: every meter change starts a new bar (as in
    ``Song.bar_starts``), counted arithmetically so that a long song with tiny bars costs nothing."""
    meters = sorted(song.time_signatures) or [TimeSignature(0, 4, 4)]
    if meters[0].tick > 0:
        meters.insert(0, TimeSignature(0, 4, 4))
    bar = 1
    for i, ts in enumerate(meters):
        bar_ticks = max(1, song.resolution * 4 * ts.numerator // ts.denominator)
        beat_ticks = max(1, song.resolution * 4 // ts.denominator)
        end = meters[i + 1].tick if i + 1 < len(meters) else None
        if end is None or tick < end:
            offset = tick - ts.tick
            return bar + offset // bar_ticks, (offset % bar_ticks) // beat_ticks + 1
        bar += -(-(end - ts.tick) // bar_ticks)  # bars begun in this meter
    raise AssertionError("unreachable: the last meter has no end")


def _where(song: Song, tick: int) -> str:
    bar, beat = _bar_beat(song, tick)
    return f"{bar}.{beat}"


def summary(result: LoadResult, file: str) -> dict[str, Any]:
    """A JSON-able description of what was read."""
    song = result.song
    tm = song.tempo_map()
    tracks = []
    for i, t in enumerate(song.tracks, 1):
        pitches = [n.pitch for n in t.notes]
        tracks.append(
            {
                "index": i,
                "name": t.name,
                "channel": t.channel + 1,
                "is_drum": t.is_drum,
                "program": t.program,
                "program_name": "Drums" if t.is_drum else GM_PROGRAM_NAMES[t.program],
                "notes": len(t.notes),
                "controls": len(t.controls),
                "sustain_pedal_events": sum(
                    1 for c in t.controls if c.kind == "control_change" and c.number == 64
                ),
                "lowest_pitch": min(pitches, default=None),
                "highest_pitch": max(pitches, default=None),
                "meta": _meta_counts(t.meta),
            }
        )
    state = result.state
    takes = state.get("takes") if isinstance(state, dict) else None
    return {
        "file": file,
        "kind": result.kind,
        "midi_format": result.midi_format,
        "title": song.title,
        "resolution": song.resolution,
        "end_tick": song.length_ticks,
        "last_note_end_tick": song.end_tick,
        "duration_seconds": round(tm.tick_to_seconds(song.length_ticks), 3),
        "bars": _bar_beat(song, song.length_ticks - 1)[0] if song.length_ticks else 0,
        "note_count": song.note_count,
        "tempos": [
            {
                "tick": t.tick,
                "bar_beat": _where(song, t.tick),
                "seconds": round(tm.tick_to_seconds(t.tick), 3),
                "bpm": round(t.bpm, 3),
                "us_per_quarter": t.us_per_quarter,
            }
            for t in song.tempos
        ],
        "time_signatures": [
            {
                "tick": t.tick,
                "bar_beat": _where(song, t.tick),
                "meter": f"{t.numerator}/{t.denominator}",
            }
            for t in song.time_signatures
        ],
        "key_signatures": [{"tick": k.tick, "key": k.key} for k in song.key_signatures],
        "markers": [{"tick": m.tick, "text": m.text} for m in song.markers],
        "chords": [
            {"tick": c.tick, "bar_beat": _where(song, c.tick), "chord": c.symbol} for c in song.chords
        ],
        "meta": _meta_counts(song.meta),
        "tracks": tracks,
        "repairs": list(result.repairs),
        "notices": list(result.notices),
        "state_keys": sorted(state) if isinstance(state, dict) else [],
        "takes": len(takes) if isinstance(takes, list) else 0,
    }


def _meta_counts(events: list[MetaEvent]) -> dict[str, int]:
    """How many kept meta/sysex events of each kind (lyrics, sysex, copyright...), in first-seen order."""
    return dict(Counter(m.kind for m in events))


def _kept(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:04.1f}" if hours else f"{minutes}:{sec:04.1f}"


def format_text(info: dict[str, Any]) -> str:
    """The summary as lines a musician reads."""
    lines = []
    what = f"MIDI format {info['midi_format']}" if info["kind"] == "midi" else "musicgen project"
    lines.append(f"{info['file']}: {what}, {info['resolution']} ticks per quarter note")
    if info["title"]:
        lines.append(f"title: {info['title']}")
    lines.append(
        f"duration: {_duration(info['duration_seconds'])} ({info['end_tick']} ticks), "
        f"{_count(info['note_count'], 'note')} in {_count(len(info['tracks']), 'track')}"
    )
    tempos = ", ".join(f"{t['bpm']:g} BPM at {t['bar_beat']}" for t in info["tempos"]) or "120 BPM (none set)"
    lines.append(f"tempo: {tempos}")
    meters = (
        ", ".join(f"{m['meter']} at {m['bar_beat']}" for m in info["time_signatures"]) or "4/4 (none set)"
    )
    lines.append(f"meter: {meters}")
    if info["key_signatures"]:
        lines.append("key: " + ", ".join(f"{k['key']} at tick {k['tick']}" for k in info["key_signatures"]))
    if info["markers"]:
        lines.append("markers: " + ", ".join(f"{m['text']!r} at tick {m['tick']}" for m in info["markers"]))
    if info["chords"]:
        lines.append("chords: " + ", ".join(f"{c['chord']} at {c['bar_beat']}" for c in info["chords"]))
    if info["meta"]:
        lines.append(f"conductor track: kept {_kept(info['meta'])}")
    lines.append("tracks:")
    for t in info["tracks"]:
        instrument = "drums" if t["is_drum"] else f"program {t['program']} ({t['program_name']})"
        lo, hi = t["lowest_pitch"], t["highest_pitch"]
        pitch = "" if not t["notes"] else f", pitch {lo}" if lo == hi else f", pitches {lo}-{hi}"
        pedal = f", {t['sustain_pedal_events']} sustain-pedal events" if t["sustain_pedal_events"] else ""
        kept = f"; kept: {_kept(t['meta'])}" if t["meta"] else ""
        lines.append(
            f"  {t['index']:>2}. {t['name'] or '(unnamed)'}: channel {t['channel']}, {instrument}, "
            f"{_count(t['notes'], 'note')}{pitch}, {_count(t['controls'], 'controller event')}{pedal}{kept}"
        )
    if info["kind"] == "project":
        lines.append(f"app state: {', '.join(info['state_keys']) or 'none'}; {info['takes']} takes")
    if info["repairs"]:
        lines.append(f"repairs ({len(info['repairs'])}):")
        lines.extend(f"  - {r}" for r in info["repairs"])
    else:
        lines.append("repairs: none")
    if info["notices"]:
        lines.append("left out or converted:")
        lines.extend(f"  - {n}" for n in info["notices"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print what the file holds; MidiImportError/ProjectError become `error: ...` in the caller."""
    result = load_any(args.file)
    info = summary(result, args.file)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        print(format_text(info))
    return 0
