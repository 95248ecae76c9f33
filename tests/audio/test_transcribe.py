"""Audio in: real FluidSynth renders of melodies are transcribed by the real Basic Pitch model, and
bad recordings are refused with one line.

The melodies: the app's shipped examples (a flute folk tune, a square-lead pop hook) and Essen tunes
from music21's corpus, each rendered through FluidSynth with the default SoundFont. A note counts
as recovered when a transcribed note has its pitch and an onset within 50 ms.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import read_midi
from musicgen_app.core.song import Note, Song, TempoChange, Track
from musicgen_app.errors import AudioError
from musicgen_app.ml.audio.audio_file import Audio, parse_wav, read_audio
from musicgen_app.ml.audio.transcribe import (
    TranscriptionCancelledError,
    count_matches,
    resample,
    sketch_song,
    transcribe_audio,
)
from musicgen_app.playback.render import normalize_peak, render_song, write_wav

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
pytestmark = pytest.mark.fluidsynth


def _melody(path: Path, track: int = 0, program: int | None = None) -> Song:
    song = read_midi(path).song
    keep = song.tracks[track]
    if program is not None:
        keep.program = program
    song.tracks = [keep]
    return song


def _essen(n: int) -> list[Song]:
    from musicgen_app.ml.data import encode_abc_tune, iter_corpus_tunes
    from musicgen_app.ml.tokenizers import steps_to_notes

    songs = []
    for tune_id, abc in iter_corpus_tunes("essen", limit=4 * n):
        try:
            tune = encode_abc_tune(abc, tune_id)
        except Exception:
            continue
        notes = [Note(a, p, b, 90) for a, b, p in steps_to_notes(tune.steps.tolist(), 0, 120)]
        if len(notes) < 20:
            continue
        song = Song(tempos=[TempoChange(0, 600_000)], title=tune_id)  # 100 BPM
        song.tracks.append(
            Track(name=tune_id, program=0, notes=[x for x in notes if x.start_tick < 40 * 480])
        )
        songs.append(song)
        if len(songs) == n:
            break
    return songs


def _reference(song: Song) -> list[tuple[float, int]]:
    tm = song.tempo_map()
    return [(tm.tick_to_seconds(n.start_tick), n.pitch) for n in song.tracks[0].notes]


def _render(song: Song) -> Audio:
    return Audio(normalize_peak(render_song(song)), 44100)


@pytest.fixture(scope="module")
def folk_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Song]:
    song = _melody(EXAMPLES / "folk_tune.mid")
    path = tmp_path_factory.mktemp("audio") / "folk.wav"
    write_wav(normalize_peak(render_song(song)), path)
    return path, song


# -- transcription of real renders ---------------------------------------------------------------
def test_rendered_melodies_are_recovered() -> None:
    songs = [
        _melody(EXAMPLES / "folk_tune.mid"),  # flute
        _melody(EXAMPLES / "pop_hook.mid", 0),  # square lead
        *_essen(2),  # piano
    ]
    total = hits = extra = 0
    for song in songs:
        ref = _reference(song)
        events = transcribe_audio(_render(song))
        h = count_matches(ref, events)
        assert h / len(ref) >= 0.85, (song.title, h, len(ref))
        total += len(ref)
        hits += h
        extra += len(events) - h
    assert hits / total >= 0.9, (hits, total)
    assert extra / (hits + extra) < 0.15, (extra, hits)


def test_a_transposed_melody_is_heard_transposed(folk_wav: tuple[Path, Song]) -> None:
    _, song = folk_wav
    up = song.copy()
    up.tracks[0].notes = [n.moved(delta_pitch=5) for n in song.tracks[0].notes]
    events = transcribe_audio(_render(up))
    assert count_matches(_reference(up), events) / len(up.tracks[0].notes) >= 0.9
    assert count_matches(_reference(song), events) <= 3  # the untransposed pitches are not there


def test_silence_gives_no_notes_and_cancel_stops() -> None:
    quiet = Audio(np.zeros((44100 * 3, 2), np.float32), 44100)
    assert transcribe_audio(quiet) == []
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TranscriptionCancelledError):
        transcribe_audio(quiet, cancel=cancel)


def test_sketch_song_snaps_to_the_grid(folk_wav: tuple[Path, Song]) -> None:
    path, song = folk_wav
    events = transcribe_audio(read_audio(path))
    sketch = sketch_song(events, bpm=180, grid_ticks=120, name="folk")
    notes = sketch.tracks[0].notes
    assert notes and all(n.start_tick % 120 == 0 and n.end_tick % 120 == 0 for n in notes)
    assert all(n.end_tick > n.start_tick for n in notes)
    # at the song's own tempo, the snapped onsets land on the written ones
    written = {(n.start_tick, n.pitch) for n in song.tracks[0].notes}
    assert len(written & {(n.start_tick, n.pitch) for n in notes}) / len(written) >= 0.9
    same_key = {}
    for n in notes:  # no two notes of a pitch overlap
        assert n.start_tick >= same_key.get(n.pitch, 0)
        same_key[n.pitch] = n.end_tick


# -- the resampler ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rate_in", [44100, 48000, 16000, 22050, 32001])
def test_resample_keeps_a_tone(rate_in: int) -> None:
    t = np.arange(rate_in * 2) / rate_in
    x = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    y = resample(x, rate_in, 22050)
    assert abs(len(y) - 2 * 22050) <= 1
    mid = y[2000:-2000]
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(len(mid))))
    peak_hz = np.argmax(spectrum) * 22050 / len(mid)
    assert abs(peak_hz - 440.0) < 2.0
    assert abs(np.max(np.abs(mid)) - 0.5) < 0.01


def test_resample_removes_what_the_new_rate_cannot_hold() -> None:
    t = np.arange(44100) / 44100
    x = np.sin(2 * np.pi * 15000.0 * t).astype(np.float32)  # above 11,025 Hz
    y = resample(x, 44100, 22050)
    assert np.max(np.abs(y[1000:-1000])) < 0.01


# -- reading WAV files -----------------------------------------------------------------------------
def _wav_bytes(pcm: bytes, *, fmt: int = 1, channels: int = 1, rate: int = 22050, bits: int = 16) -> bytes:
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk, padded
    body += b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_sample_formats_read_alike() -> None:
    values = np.array([0.0, 0.5, -0.5, 0.25, -1.0], dtype=np.float64)
    as_int16 = (values * 32768).clip(-32768, 32767).astype("<i2").tobytes()
    as_int32 = (values * 2**31).clip(-(2**31), 2**31 - 1).astype("<i4").tobytes()
    as_int24 = b"".join(int(v * 2**23).to_bytes(4, "little", signed=True)[:3] for v in values.clip(-1, 0.99))
    as_u8 = ((values * 128) + 128).clip(0, 255).astype(np.uint8).tobytes()
    as_f32 = values.astype("<f4").tobytes()
    as_f64 = values.astype("<f8").tobytes()
    cases = [
        (as_int16, 1, 16),
        (as_int32, 1, 32),
        (as_int24, 1, 24),
        (as_u8, 1, 8),
        (as_f32, 3, 32),
        (as_f64, 3, 64),
    ]
    for pcm, fmt, bits in cases:
        audio = parse_wav(_wav_bytes(pcm, fmt=fmt, bits=bits))
        assert audio.sample_rate == 22050 and audio.channels == 1
        np.testing.assert_allclose(audio.mono(), values, atol=1 / 127, err_msg=f"{bits}-bit fmt {fmt}")


def test_stereo_is_mixed_and_a_cut_recording_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    frames = np.array([[0.5, -0.5], [0.5, 0.5], [0.25, 0.75]], dtype="<f4")
    data = _wav_bytes(frames.tobytes(), fmt=3, channels=2, bits=32)
    np.testing.assert_allclose(parse_wav(data).mono(), [0.0, 0.5, 0.5])
    cut = parse_wav(data[:-5])  # the last frame is incomplete
    assert cut.samples.shape == (2, 2)
    # the renderer's own WAV reads back
    write_wav(np.stack([np.linspace(-0.5, 0.5, 100)] * 2, axis=1).astype(np.float32), tmp_path / "r.wav")
    back = read_audio(tmp_path / "r.wav")
    assert back.sample_rate == 44100 and back.channels == 2
    np.testing.assert_allclose(back.samples[:, 0], np.linspace(-0.5, 0.5, 100), atol=1e-4)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is empty"),
        (b"hello, this is text", "is not a WAV file"),
        (b"fLaC" + bytes(40), "is a FLAC file"),
        (b"OggS" + bytes(40), "is an Ogg file"),
        (b"\xff\xfb\x90\x00" + bytes(40), "is an MP3 file"),
        (b"\x00\x00\x00\x20ftypM4A " + bytes(40), "is an MP4/M4A file"),
        (b"FORM\x00\x00\x00\x20AIFF" + bytes(40), "is an AIFF file"),
        (b"MThd\x00\x00\x00\x06" + bytes(10), "is a MIDI file"),
        (b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00", "has no format chunk"),
        (_wav_bytes(b"", bits=16), "holds no audio"),
        (_wav_bytes(bytes(8), fmt=2, bits=4), "compressed WAV audio"),
        (_wav_bytes(bytes(8), bits=12), "12-bit PCM samples"),
        (_wav_bytes(bytes(8), rate=10), "sample rate of 10 Hz"),
        (_wav_bytes(bytes(8), channels=0), "claims 0 channels"),
        (_wav_bytes(bytes(8))[:36], "no audio data chunk"),
    ],
)
def test_bad_recordings_are_one_line(data: bytes, expected: str) -> None:
    with pytest.raises(AudioError) as info:
        parse_wav(data, "take.wav")
    message = str(info.value)
    assert expected in message and "take.wav" in message and "\n" not in message


def test_too_long_a_recording_is_refused() -> None:
    data = _wav_bytes(bytes(2 * 22050 * 3), rate=22050)  # 3 s
    with pytest.raises(AudioError, match="minutes long"):
        parse_wav(data, "long.wav", max_seconds=2.0)


def test_non_regular_files_are_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path, expected in (
        (fifo, "named pipe"),
        (Path("/dev/zero"), "character device"),
        (tmp_path, "folder"),
    ):
        with pytest.raises(AudioError, match=expected):
            read_audio(path)


# -- the command line ------------------------------------------------------------------------------
def test_cli_transcribes_and_quantizes(
    folk_wav: tuple[Path, Song], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav, song = folk_wav
    out = tmp_path / "sketch.mid"
    assert main(["audio", "transcribe", str(wav), "-o", str(out), "--quantize", "1/16", "--bpm", "180"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out}: ") and "snapped to 1/16" in said
    sketch = read_midi(out).song
    notes = sketch.tracks[0].notes
    assert sketch.tempos[0].bpm == pytest.approx(180, abs=0.01)
    assert all(n.start_tick % 120 == 0 for n in notes)
    written = {(n.start_tick, n.pitch) for n in song.tracks[0].notes}
    assert len(written & {(n.start_tick, n.pitch) for n in notes}) / len(written) >= 0.9
    # as played (no grid): onsets off the grid remain
    free = tmp_path / "free.mid"
    assert main(["audio", "transcribe", str(wav), "-o", str(free), "--program", "73"]) == 0
    free_song = read_midi(free).song
    assert free_song.tracks[0].program == 73
    assert any(n.start_tick % 120 for n in free_song.tracks[0].notes)


def test_cli_silent_recording_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "silence.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(2 * 16000))
    out = tmp_path / "out.mid"
    assert main(["audio", "transcribe", str(wav), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no notes were heard" in err[0]
    assert not out.exists()


def test_cli_damaged_wav_in_a_real_process(tmp_path: Path) -> None:
    wav = tmp_path / "broken.wav"
    wav.write_bytes(_wav_bytes(bytes(100), fmt=0x55, bits=16))  # MPEG inside a WAV
    out = tmp_path / "out.mid"
    r = subprocess.run(
        [sys.executable, "-m", "musicgen_app", "audio", "transcribe", str(wav), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "compressed WAV audio (format 0x0055)" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_harmonic_ghosts_are_dropped_and_real_notes_kept() -> None:
    from musicgen_app.ml.audio.transcribe import NoteEvent, drop_harmonic_ghosts

    long_a = NoteEvent(1.0, 3.0, 57, 100)
    events = [
        long_a,
        NoteEvent(1.8, 2.2, 69, 45),  # an octave above, inside the long note, quiet: a ghost
        NoteEvent(2.0, 2.9, 33, 70),  # two octaves below, inside it: a sub-harmonic ghost
        NoteEvent(1.0, 1.5, 76, 50),  # a 12th above, with it, much quieter: an overtone
        NoteEvent(1.0, 2.5, 45, 95),  # an octave below, with it, as loud: played
        NoteEvent(1.9, 2.5, 60, 40),  # a minor third above: not a harmonic, kept
        NoteEvent(2.5, 3.5, 69, 45),  # an octave above but outlasting it: a new note
        NoteEvent(1.5, 2.0, 64, 95),  # a fifth above (7 semitones): a melody note, kept
    ]
    kept = drop_harmonic_ghosts(events)
    assert [(e.start_s, e.pitch) for e in kept] == [
        (1.0, 57),
        (1.0, 45),
        (1.9, 60),
        (2.5, 69),
        (1.5, 64),
    ]


def test_a_sounding_key_needs_a_clear_onset_to_start_again() -> None:
    from musicgen_app.ml.audio.transcribe import decode_notes

    frames = np.zeros((200, 88))
    onsets = np.zeros((200, 88))
    frames[10:150, 39] = 0.8  # one long note on key 39 (MIDI 60)
    onsets[10, 39] = 0.55  # from silence: 0.5 is enough
    onsets[60, 39] = 0.55  # inside the note: a vibrato's weak onset, not a new note
    one = decode_notes(frames, onsets, melodia_trick=False)
    assert [(a, p) for a, _, p, _ in sorted(one)] == [(10, 60)]
    onsets[100, 39] = 0.8  # a clear onset inside the note: the key is played again
    two = decode_notes(frames, onsets, melodia_trick=False)
    assert [(a, p) for a, _, p, _ in sorted(two)] == [(10, 60), (100, 60)]
    # basic-pitch's own rule (0.5 everywhere) splits the note at the weak onset too
    three = decode_notes(frames, onsets, melodia_trick=False, retrigger_threshold=0.5)
    assert [a for a, _, _, _ in sorted(three)] == [10, 60, 100]
