"""How closely a continuation follows chords: the share of its notes that are chord tones.

A note counts when a chord (not N.C.) sounds at its onset; it is a *chord tone* when its pitch
class belongs to that chord (:meth:`Chord.pitch_classes`, the bass included). *Strong beats* are
the onsets on the bar line or half way through the bar (beats 1 and 3 of 4/4), within half a 16th.
``benchmarks/bench_chords.py`` measures it on held-out POP909 songs (:func:`held_out_chord_cases`:
the song's annotated chords over the bars after the middle of its melody), with and without the
chords given to the sampler (``SamplingConfig.chords``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from musicgen_app.core.chords import ChordError, ChordSpan, chord_at, parse_chord
from musicgen_app.core.song import Note, Song

logger = logging.getLogger(__name__)


@dataclass
class ToneCount:
    """Counts of notes under a chord and of chord tones among them, overall and on strong beats."""

    notes: int = 0
    tones: int = 0
    strong_notes: int = 0
    strong_tones: int = 0

    def add(self, other: ToneCount) -> None:
        """Add ``other``'s counts to these."""
        self.notes += other.notes
        self.tones += other.tones
        self.strong_notes += other.strong_notes
        self.strong_tones += other.strong_tones

    @property
    def share(self) -> float:
        """Chord tones / notes under a chord (0 when there are none)."""
        return self.tones / self.notes if self.notes else 0.0

    @property
    def strong_share(self) -> float:
        """The same on strong beats."""
        return self.strong_tones / self.strong_notes if self.strong_notes else 0.0


def count_chord_tones(song: Song, notes: Sequence[Note], spans: Sequence[ChordSpan]) -> ToneCount:
    """Count ``notes`` (in ``song``'s ticks) that sound over ``spans`` and are chord tones."""
    ordered = sorted(spans, key=lambda s: s.start_tick)
    bar_lines = song.bar_starts(max((n.start_tick for n in notes), default=0))
    out = ToneCount()
    slack = song.resolution // 8  # half a 16th: a played (unquantised) onset still counts
    for n in notes:
        chord = chord_at(ordered, n.start_tick)
        if chord is None:
            continue
        tone = n.pitch % 12 in chord.pitch_classes()
        bar = max((b for b in bar_lines if b <= n.start_tick + slack), default=0)
        half = max(1, song.ticks_per_bar(bar) // 2)
        off = (n.start_tick - bar) % half
        strong = min(off, half - off) <= slack
        out.notes += 1
        out.tones += tone
        out.strong_notes += strong
        out.strong_tones += tone and strong
    return out


@dataclass
class ChordCase:
    """A held-out song, where its continuation starts, and its annotated chords from there."""

    name: str
    song: Song
    track: int
    start_tick: int
    chords: list[ChordSpan]


def annotated_spans(song: Song, labels: Sequence[tuple[float, float, str]]) -> list[ChordSpan]:
    """POP909 chord labels (start and end in seconds, Harte symbol) as spans in ``song``'s ticks
    (labels that do not parse are left out, and said in the debug log)."""
    tempo = song.tempo_map()
    out: list[ChordSpan] = []
    for start, end, text in labels:
        try:
            chord = parse_chord(text)
        except ChordError as exc:
            logger.debug("chord label left out: %s", exc)
            continue
        a, b = round(tempo.seconds_to_tick(start)), round(tempo.seconds_to_tick(end))
        if b > a:
            out.append(ChordSpan(a, b, chord))
    return out


def held_out_chord_cases(n: int, bars: int, folder: str | Path | None = None) -> list[ChordCase]:
    """Up to ``n`` held-out POP909 songs (the fill benchmark's cases: the test split, a bar line
    near the middle of the MELODY track) with their annotated chords over the ``bars`` bars from
    there; songs without chord labels there are skipped."""
    from musicgen_app.ml import fill_eval, midi_data

    base = Path(folder) if folder is not None else fill_eval.POP909_DIR
    out: list[ChordCase] = []
    for case in fill_eval.held_out_cases(4 * n, base):
        mids = midi_data.midi_files(base / case.name)
        labels = midi_data._pop909_annotations(mids[0]).get("chords", [])
        end = case.start_tick + bars * case.song.ticks_per_bar(case.start_tick)
        spans = [
            ChordSpan(max(s.start_tick, case.start_tick), min(s.end_tick, end), s.chord)
            for s in annotated_spans(case.song, labels)
            if s.end_tick > case.start_tick and s.start_tick < end
        ]
        if not spans:
            continue
        out.append(ChordCase(case.name, case.song, case.track, case.start_tick, spans))
        if len(out) == n:
            break
    return out
