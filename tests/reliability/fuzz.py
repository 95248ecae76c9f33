"""The MIDI fuzzer shared by tests/reliability/test_midi_fuzz.py (a CI-sized run) and
benchmarks/bench_fuzz.py (100,000 mutants): seed files, mutations, and the check that a mutant is
either imported as a sound song or refused with MidiImportError.
"""

from __future__ import annotations

import io
import random
import struct

from core.malformed import CASES
from core.samples import TEMPO_120, must_show_file, notes_body, smf
from core.test_midi_roundtrip import _comparable

from musicgen_app.cli.inspect_cmd import format_text, summary
from musicgen_app.core.midi_io import (
    MAX_SONG_SECONDS,
    _events_from_mido,
    _events_tolerant,
    _Report,
    _split_chunks,
    midi_bytes,
    read_midi,
)
from musicgen_app.core.project import LoadResult
from musicgen_app.errors import MidiImportError


def seeds() -> list[bytes]:
    """The files the mutants are made from: the must-show file, a small file, the malformed cases
    that import."""
    buf = io.BytesIO()
    must_show_file().save(file=buf)
    files = [
        buf.getvalue(),
        smf(TEMPO_120 + notes_body((60, 100, 480), (62, 90, 240)), notes_body((36, 1, 1))),
    ]
    files += [data for _, data, outcome, _ in CASES if outcome != "refuse" and len(data) < 100_000]
    return files


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with 1 to 8 random damages (bit flips, status bytes, cuts, wrong lengths...)."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        if not b:
            b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
            continue
        op = rng.randrange(8)
        i = rng.randrange(len(b))
        if op == 0:  # flip a bit
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # random byte, often a status byte
            b[i] = rng.choice((rng.randrange(256), rng.randrange(0x80, 0x100), 0xFF, 0xF0, 0x2F))
        elif op == 2:  # insert bytes
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        elif op == 3:  # delete a run
            del b[i : i + rng.randrange(1, 16)]
        elif op == 4:  # truncate
            del b[i:]
        elif op == 5:  # duplicate a run
            j = min(len(b), i + rng.randrange(1, 64))
            b[i:i] = b[i:j]
        elif op == 6:  # overwrite a chunk length with something wrong
            pos = b.find(b"MTrk", rng.randrange(len(b)))
            if pos >= 0 and pos + 8 <= len(b):
                b[pos + 4 : pos + 8] = struct.pack(">I", rng.choice((0, 1, 0xFFFFFFFF, rng.randrange(2**32))))
        else:  # a huge variable-length number
            b[i:i] = rng.choice(
                (b"\x8f\xff\xff\xff\x7f", b"\xff\xff\xff\xff\xff\xff", b"\x80\x80\x80\x80\x00")
            )
    return bytes(b)


def check(data: bytes) -> bool:
    """True when ``data`` was imported (and the song is sound), False when it was refused."""
    try:
        result = read_midi(data)
    except MidiImportError as exc:
        assert str(exc)  # a message for the user
        return False
    song = result.song
    assert song.resolution > 0
    assert all(isinstance(line, str) and line for line in result.repairs + result.notices)
    for track in song.tracks:
        for n in track.notes:
            assert 0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 and 0 <= n.start_tick <= n.end_tick
    assert song.duration_seconds <= MAX_SONG_SECONDS + 1
    # `musicgen inspect` can describe it
    info = summary(
        LoadResult(song, result.repairs, {}, result.notices, "midi", result.midi_format), "fuzz.mid"
    )
    assert format_text(info) and info["note_count"] == song.note_count
    # whatever was salvaged is a proper song now: it exports and comes back unchanged, unrepaired
    again = read_midi(midi_bytes(song))
    assert again.repairs == [] and again.notices == []
    assert again.song == song  # notes, controls, meta events, tempo/meter/key maps, track ends
    return True


def readers_agree(data: bytes) -> int:
    """Where mido reads a track without complaint, our tolerant reader reads the same events.

    Returns how many tracks were compared.
    """
    try:
        tracks = _split_chunks(data, _Report(), _Report()).tracks
    except MidiImportError:
        return 0
    compared = 0
    for body in tracks:
        expected = _events_from_mido(body)
        if expected is None:
            continue
        fix = _Report()
        got = _events_tolerant(body, fix, 10**7)
        # the one thing mido passes silently: a time value spelled with more than 4 bytes
        assert all("longer form than MIDI allows" in line for line in fix.sentences()), fix.sentences()
        assert [_comparable(e) for e in got] == [_comparable(e) for e in expected], data[:200]
        compared += 1
    return compared
