"""MIDI files for the core tests, built byte by byte or with mido (an independent writer)."""

from __future__ import annotations

import struct

import mido
from mido.midifiles.meta import encode_variable_int


def smf(*tracks: bytes, fmt: int = 1, ntrks: int | None = None, division: int = 480) -> bytes:
    """A Standard MIDI File from raw track bodies (each body is the bytes inside one MTrk)."""
    header = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks) if ntrks is None else ntrks, division)
    return header + b"".join(chunk(b"MTrk", body) for body in tracks)


def chunk(cid: bytes, body: bytes, length: int | None = None) -> bytes:
    """A chunk with its 4-byte id and a (possibly wrong) big-endian length."""
    return cid + struct.pack(">I", len(body) if length is None else length) + body


EOT = b"\x00\xff\x2f\x00"
TEMPO_120 = b"\x00\xff\x51\x03\x07\xa1\x20"


def notes_body(*notes: tuple[int, int, int], channel: int = 0, eot: bool = True) -> bytes:
    """A track body with back-to-back notes (pitch, velocity, length in ticks), each starting at the
    end of the previous one, written with explicit note-on / note-off status bytes."""
    body = bytearray()
    for pitch, velocity, length in notes:
        body += bytes([0x00, 0x90 | channel, pitch, velocity])
        body += vlq(length) + bytes([0x80 | channel, pitch, 0])
    if eot:
        body += EOT
    return bytes(body)


def vlq(value: int) -> bytes:
    """A MIDI variable-length number (mido's encoder, independent of the code under test)."""
    return bytes(encode_variable_int(value))


def must_show_file() -> mido.MidiFile:
    """The issue's must-show file, written with mido.

    Type 1; conductor with tempo change (120 -> 150 BPM) and meter change (4/4 -> 3/4) and a key;
    a piano track with overlapping chords, pitches 0 and 127, velocities 1..127 and the sustain
    pedal; a bass track with a mid-track program change and pitch bend; drums on channel 10.
    """
    res = 480
    mf = mido.MidiFile(type=1, ticks_per_beat=res)
    conductor = [
        (0, mido.MetaMessage("track_name", name="Must show")),
        (0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
        (0, mido.MetaMessage("key_signature", key="Eb")),
        (0, mido.MetaMessage("set_tempo", tempo=500_000)),
        (4 * res * 2, mido.MetaMessage("set_tempo", tempo=400_000)),
        (4 * res * 2, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
        (4 * res * 2, mido.MetaMessage("marker", text="B section")),
    ]
    mf.tracks.append(_delta_track(conductor))

    piano: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name="Piano")),
        (0, mido.Message("program_change", channel=0, program=0)),
    ]
    # velocities 1..127 on a walking line, each note 120 ticks, overlapping the next by 60
    for i, velocity in enumerate(range(1, 128)):
        start = i * 60
        pitch = 36 + (i * 7) % 60
        piano.append((start, mido.Message("note_on", channel=0, note=pitch, velocity=velocity)))
        piano.append((start + 120, mido.Message("note_off", channel=0, note=pitch, velocity=0)))
    base = 128 * 60
    # overlapping chords: C E G held while F A C starts, then the extremes 0 and 127
    for pitch, start, end in [
        (60, 0, 960),
        (64, 0, 960),
        (67, 0, 960),
        (65, 480, 1440),
        (69, 480, 1440),
        (72, 480, 1440),
    ]:
        piano.append((base + start, mido.Message("note_on", channel=0, note=pitch, velocity=80)))
        piano.append(
            (base + end, mido.Message("note_on", channel=0, note=pitch, velocity=0))
        )  # vel-0 note-off
    piano.append((base + 1440, mido.Message("note_on", channel=0, note=0, velocity=90)))
    piano.append((base + 1920, mido.Message("note_off", channel=0, note=0, velocity=0)))
    piano.append((base + 1440, mido.Message("note_on", channel=0, note=127, velocity=91)))
    piano.append((base + 1920, mido.Message("note_off", channel=0, note=127, velocity=0)))
    piano.append((base, mido.Message("control_change", channel=0, control=64, value=127)))
    piano.append((base + 1400, mido.Message("control_change", channel=0, control=64, value=0)))
    piano.append((base + 100, mido.Message("control_change", channel=0, control=7, value=100)))
    mf.tracks.append(_delta_track(piano))

    bass: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name="Bass")),
        (0, mido.Message("program_change", channel=1, program=33)),
        (3 * res, mido.Message("program_change", channel=1, program=34)),
        (res, mido.Message("pitchwheel", channel=1, pitch=-8192)),
        (res + 10, mido.Message("pitchwheel", channel=1, pitch=8191)),
        (res + 20, mido.Message("pitchwheel", channel=1, pitch=0)),
    ]
    for i in range(16):
        pitch = [28, 31, 33, 35][i % 4]
        bass.append((i * res, mido.Message("note_on", channel=1, note=pitch, velocity=100)))
        bass.append(((i + 1) * res, mido.Message("note_off", channel=1, note=pitch, velocity=64)))
    mf.tracks.append(_delta_track(bass))

    drums: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, mido.MetaMessage("track_name", name="Drums")),
        (0, mido.Message("program_change", channel=9, program=0)),
    ]
    for i in range(32):
        for pitch in (36, 42) if i % 2 == 0 else (38, 42):
            start = i * res // 2
            drums.append((start, mido.Message("note_on", channel=9, note=pitch, velocity=100 - i)))
            drums.append((start + 60, mido.Message("note_off", channel=9, note=pitch, velocity=0)))
    mf.tracks.append(_delta_track(drums))
    return mf


def _delta_track(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """Absolute-time events -> a mido track; at equal ticks note-offs first, then the rest in order."""

    def is_off(msg: mido.Message | mido.MetaMessage) -> bool:
        return msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0)

    order = sorted(range(len(events)), key=lambda i: (events[i][0], not is_off(events[i][1]), i))
    track = mido.MidiTrack()
    last = 0
    for i in order:
        tick, msg = events[i]
        track.append(msg.copy(time=tick - last))
        last = tick
    return track
