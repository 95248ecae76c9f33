"""Transcription of rendered held-out melodies: notes recovered, extra notes, time per second of audio.

The melodies are held out from training: the Essen test split (music21's corpus, the split every
model of this app is evaluated on) and POP909's test bucket (by content hash, as `musicgen dataset`
splits it; the MELODY track, its first ``--max-seconds``). Essen's notes are played at 90 % of their
length (legato repeated notes would merge into one, on any instrument); POP909's are as written.
Each is rendered through FluidSynth (the default SoundFont) with one General MIDI instrument,
normalised to -1 dBFS, and transcribed by
:func:`musicgen_app.ml.audio.transcribe.transcribe_audio` with its defaults.

A reference note is recovered when a transcribed note has its pitch exactly and an onset within
50 ms (each transcribed note counts once); the transcribed notes that recover nothing are extra.
Reported per instrument: recovered / reference notes, extra / transcribed notes, and the
transcription time (resampling, model and decoding) per second of audio.

Run: ``.venv/bin/python benchmarks/bench_transcription.py [--melodies 50] [--programs 0 73]
[--readme]``. Report the load (``uptime``) with the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicgen_app.core.song import Note, Song, TempoChange, Track  # noqa: E402

POP909 = ROOT.parent / "shared" / "data" / "pop909"
ESSEN_BPM = 100.0
TICKS_PER_STEP = 120  # a 16th at 480 ticks per quarter
ARTICULATION = 0.9  # Essen's notes run into each other; a repeated note needs a gap to be heard again
GM_NAMES = {0: "piano", 40: "violin", 53: "voice oohs", 65: "alto sax", 73: "flute"}


@dataclass
class Melody:
    """A held-out melody: where it comes from and its notes."""

    source: str
    song: Song


def essen_melodies(n: int, max_seconds: float) -> list[Melody]:
    """``n`` tunes spread over the Essen test split, at 100 BPM, cut after ``max_seconds``."""
    from musicgen_app.ml import data
    from musicgen_app.ml.tokenizers import steps_to_notes

    ds = data.load_or_build("essen", progress=False)
    test = data.split_indices(ds)["test"]
    picks = [int(test[round(i * (len(test) - 1) / max(1, n - 1))]) for i in range(n)]
    out = []
    for i in picks:
        tune = ds.tune(i)
        song = Song(tempos=[TempoChange(0, round(60_000_000 / ESSEN_BPM))], title=tune.id)
        notes = [  # played detached (90 % of each note), as a singer or player articulates
            Note(a, p, a + max(TICKS_PER_STEP // 2, round((b - a) * ARTICULATION)), 90)
            for a, b, p in steps_to_notes(tune.steps.tolist(), 0, TICKS_PER_STEP)
        ]
        song.tracks.append(Track(name="melody", notes=notes))
        out.append(Melody(f"essen/{tune.id}", _cut(song, max_seconds)))
    return out


def pop909_melodies(n: int, max_seconds: float) -> list[Melody]:
    """The MELODY tracks of the first ``n`` POP909 songs of the test bucket, cut after ``max_seconds``."""
    from musicgen_app.core.midi_io import read_midi
    from musicgen_app.ml.midi_data import SPLIT_BUCKETS

    out: list[Melody] = []
    for path in sorted(POP909.glob("*/*.mid")):
        raw = path.read_bytes()
        if int(hashlib.sha1(raw).hexdigest()[:8], 16) % 100 < SPLIT_BUCKETS[1]:
            continue  # a training or validation song
        song = read_midi(raw).song
        melody = next((t for t in song.tracks if t.name.strip().upper() == "MELODY"), None)
        if melody is None or not melody.notes:
            continue
        first = melody.notes[0].start_tick
        notes = [n.moved(-first) for n in melody.notes]
        tempos = [TempoChange(0, song.tempo_map().us_per_quarter_at(first))]
        single = Song(resolution=song.resolution, tempos=tempos, title=path.stem)
        single.tracks.append(Track(name="melody", notes=notes))
        out.append(Melody(f"pop909/{path.stem}", _cut(single, max_seconds)))
        if len(out) >= n:
            break
    return out


def _cut(song: Song, max_seconds: float) -> Song:
    tm = song.tempo_map()
    limit = tm.seconds_to_tick(max_seconds)
    track = song.tracks[0]
    track.notes = [n for n in track.notes if n.start_tick < limit]
    return song


def main() -> None:
    """Render, transcribe and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--melodies", type=int, default=50, help="held-out melodies, half Essen, half POP909")
    ap.add_argument("--programs", type=int, nargs="+", default=[0], help="GM instruments to render with")
    ap.add_argument("--max-seconds", type=float, default=30.0, help="each melody cut after this")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    ap.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = ap.parse_args()

    from musicgen_app.ml.audio.audio_file import Audio
    from musicgen_app.ml.audio.transcribe import count_matches, load_model, transcribe_audio
    from musicgen_app.playback.render import normalize_peak, render_song

    load_model(args.threads)
    n_pop = args.melodies // 2
    melodies = essen_melodies(args.melodies - n_pop, args.max_seconds) + pop909_melodies(
        n_pop, args.max_seconds
    )
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    n_essen = sum(m.source.startswith("essen") for m in melodies)
    say(
        f"{len(melodies)} held-out melodies ({n_essen} Essen test split at {ESSEN_BPM:g} BPM, "
        f"{len(melodies) - n_essen} POP909 test bucket), first {args.max_seconds:g} s of each, "
        "rendered by FluidSynth (TimGM6mb); onset within 50 ms, exact pitch:"
    )
    say()
    say("| instrument | reference notes | recovered | extra (of transcribed) | s per s of audio |")
    say("|---|---|---|---|---|")
    for program in args.programs:
        ref_total = est_total = hit_total = 0
        by_source = {"essen": [0, 0], "pop909": [0, 0]}
        audio_s = work_s = 0.0
        for m in melodies:
            for t in m.song.tracks:
                t.program = program
            samples = normalize_peak(render_song(m.song))
            audio = Audio(samples, 44100)
            t0 = time.perf_counter()
            events = transcribe_audio(audio)
            work_s += time.perf_counter() - t0
            audio_s += audio.duration_s
            tm = m.song.tempo_map()
            ref = [(tm.tick_to_seconds(n.start_tick), n.pitch) for n in m.song.tracks[0].notes]
            hits = count_matches(ref, events)
            ref_total += len(ref)
            est_total += len(events)
            hit_total += hits
            src = by_source[m.source.split("/")[0]]
            src[0] += len(ref)
            src[1] += hits
            if os.environ.get("BENCH_VERBOSE"):
                print(f"  {m.source}: {hits}/{len(ref)} recovered, {len(events) - hits} extra", flush=True)
        name = f"{program} {GM_NAMES.get(program, '')}".strip()
        parts = ", ".join(f"{k} {v[1] / max(1, v[0]):.1%}" for k, v in by_source.items() if v[0])
        say(
            f"| {name} | {ref_total} | {hit_total / max(1, ref_total):.1%} ({parts}) | "
            f"{(est_total - hit_total) / max(1, est_total):.1%} ({est_total - hit_total}) | "
            f"{work_s / max(1e-9, audio_s):.3f} |"
        )
    load = os.getloadavg()
    say()
    say(f"Load average during the run: {load[0]:.1f} (2 cores), onnxruntime threads: {args.threads}.")
    if args.readme:
        from readme_block import write_block

        cmd = "benchmarks/bench_transcription.py " + " ".join(sys.argv[1:])
        write_block("bench-transcription", f"`{cmd.strip()}`:\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
