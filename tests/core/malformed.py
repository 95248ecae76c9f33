# ruff: noqa: E501  (a table of byte strings reads best one case per line)
"""The malformed MIDI files of issue 2, built byte by byte, and what must happen to each.

Each case is ``(name, data, outcome, expected)``: outcome ``"refuse"`` means MidiImportError whose
message contains ``expected``; ``"repair"`` means the file imports and ``expected`` (a substring) is
among the repairs or notices; ``"clean"`` means it imports with nothing to report.
"""

from __future__ import annotations

import struct

from .samples import EOT, TEMPO_120, chunk, notes_body, smf, vlq

NOTE = notes_body((60, 100, 480))
TWO = notes_body((60, 100, 480), (62, 90, 480))


def _riff(data: bytes) -> bytes:
    inner = b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(inner)) + b"RMID" + inner


def _header(fmt: int, ntrks: int, division: int) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, fmt, ntrks, division)


def _truncated_file() -> bytes:
    data = smf(TEMPO_120 + notes_body((60, 100, 480), (62, 100, 480), (64, 100, 480)))
    return data[: len(data) - 9]  # ends inside the third note's note-off


def _wrong_length(delta: int) -> bytes:
    first = chunk(b"MTrk", TWO, len(TWO) + delta)
    return _header(1, 2, 480) + first + chunk(b"MTrk", notes_body((40, 80, 960)))


CASES: list[tuple[str, bytes, str, str]] = [
    ("empty file", b"", "refuse", "empty"),
    ("text file", b"Hello! This is a README, not music.\nSecond line.\n" * 3, "refuse", "text file"),
    ("binary junk", bytes(range(256)) * 4, "refuse", "not a MIDI file"),
    ("header cut short", b"MThd\x00\x00\x00\x06\x00", "refuse", "cut short inside its header"),
    ("zero tracks", _header(1, 0, 480), "refuse", "no tracks"),
    ("tracks announced, none present", _header(1, 3, 480), "refuse", "holds none"),
    ("RIFF-wrapped MIDI", _riff(smf(NOTE)), "repair", "RIFF"),
    ("junk before the header", bytes(128) + smf(NOTE), "repair", "128 bytes of other data before the music were skipped"),
    ("truncated chunk", _truncated_file(), "repair", "cut short"),
    ("chunk length too long", _wrong_length(+7), "repair", "length was wrong"),
    ("chunk length too short", _wrong_length(-5), "repair", "length was wrong"),
    ("more tracks announced than present", smf(NOTE, ntrks=3), "repair", "says it holds 3 tracks but holds 1; it was read"),
    ("fewer tracks announced than present", smf(NOTE, TWO, ntrks=1), "repair", "says it holds 1 track but holds 2; all were read"),
    ("zero tracks announced, one present", smf(NOTE, ntrks=0), "repair", "says it holds 0 tracks but holds 1"),
    (
        "unknown chunk",
        _header(1, 2, 480) + chunk(b"MTrk", NOTE) + chunk(b"XFIH", b"\x01" * 33) + chunk(b"MTrk", TWO),
        "repair",
        "1 block of unknown data was skipped",
    ),
    (
        "garbage between chunks",
        _header(1, 2, 480) + chunk(b"MTrk", NOTE) + b"\x00\x01\x02\xfe" + chunk(b"MTrk", TWO),
        "repair",
        "unreadable bytes",
    ),
    ("header length wrong", b"MThd\x00\x00\x00\x00" + smf(NOTE)[8:], "repair", "header had a wrong length"),
    ("running status at track start", smf(b"\x00\x3c\x40\x60\x90\x3e\x40\x60\x3e\x00" + EOT), "repair", "damaged byte"),
    ("running status after meta", smf(b"\x00\x90\x3c\x40\x00\xff\x06\x01X\x60\x3c\x00" + EOT), "clean", ""),
    (
        "running status after sysex",
        smf(b"\x00\x90\x3c\x40\x00\xf0\x03\x7e\x7f\xf7\x60\x3c\x00" + EOT),
        "repair",
        "lacked its own command",
    ),
    ("data bytes above 127", smf(b"\x00\x90\x3c\xc8\x60\x80\x3c\x00" + EOT), "repair", "set to 127"),
    ("undefined status bytes", smf(b"\x00\xf4\x00\xfd" + NOTE), "repair", "unknown command byte"),
    ("real-time byte in a file", smf(b"\x00\xf8" + NOTE), "repair", "live-performance message"),
    ("huge delta time", smf(TEMPO_120 + NOTE[:-4] + vlq(0x0FFFFFFF) + b"\x90\x40\x40\x10\x40\x00" + EOT), "repair", "more than 4 hours into the song"),
    ("5-byte variable-length number", smf(b"\x80\x80\x80\x80\x00" + NOTE[1:]), "clean", ""),  # read as the 0 it spells
    ("huge 5-byte delta", smf(b"\x8f\xff\xff\xff\x7f" + NOTE[1:]), "repair", "more than 4 hours into the song"),
    ("note-on without note-off", smf(b"\x00\x90\x3c\x40\x83\x60\x90\x3e\x40\x00\x3e\x00" + EOT), "repair", "had no end"),
    ("note-off without note-on", smf(b"\x00\x80\x3c\x00" + NOTE), "repair", "without a started note"),
    ("duplicate notes", smf(b"\x00\x90\x3c\x40\x00\x3c\x40\x60\x3c\x00\x00\x3c\x00" + EOT), "repair", "duplicate note"),
    ("overlapping notes of one key", smf(b"\x00\x90\x3c\x40\x30\x3c\x50\x30\x3c\x00\x30\x3c\x00" + EOT), "clean", ""),
    ("velocity-0 note-off", smf(b"\x00\x90\x3c\x40\x60\x3c\x00" + EOT), "clean", ""),
    ("tempo 0", smf(b"\x00\xff\x51\x03\x00\x00\x00" + NOTE), "repair", "1 damaged tempo change was ignored (track 1, bar 1)"),
    ("tempo of wrong length", smf(b"\x00\xff\x51\x02\x07\xa1" + NOTE), "repair", "damaged tempo change"),
    ("tempo with a byte too many", smf(b"\x00\xff\x51\x04\x07\xa1\x20\x00" + NOTE), "clean", ""),  # read from its first 3 bytes, as mido does
    ("damaged time signature", smf(b"\x00\xff\x58\x02\x04\x02" + NOTE), "repair", "damaged time signature"),
    ("damaged key signature", smf(b"\x00\xff\x59\x02\x09\x00" + NOTE), "repair", "damaged key signature"),
    ("SMPTE division", smf(NOTE, division=0xE728), "repair", "SMPTE"),
    ("impossible SMPTE division", smf(NOTE, division=0xEC28), "repair", "impossible"),
    ("division 0", smf(NOTE, division=0), "repair", "0 ticks per quarter"),
    ("format 3", smf(NOTE, fmt=3), "repair", "format 3"),
    ("format 0 with two tracks", smf(NOTE, TWO, fmt=0), "repair", "format-0 file"),
    ("format 2", smf(NOTE, TWO, fmt=2), "repair", "format 2"),
    ("missing end-of-track", smf(NOTE[:-4]), "repair", "had no end mark"),
    ("data after end-of-track", smf(NOTE + b"\x00\x00\x00\x00"), "repair", "after its end mark"),
    ("event cut off inside a track", smf(NOTE[:-4] + b"\x00\x90\x3c"), "repair", "middle of an event"),
    ("meta length running past the track", smf(b"\x00\xff\x03\x7fabc" + EOT), "repair", "middle of an event"),
    ("message over the length cap", smf(NOTE[:-4] + b"\x00\xf0" + vlq(2_000_000) + b"\x00" * 16), "repair", "longer than 1,000,000 bytes"),
    ("file over the size cap", b"MThd" + bytes(33 * 2**20), "refuse", "MiB"),
    ("endless variable-length number", smf(NOTE[:-4] + b"\xff" * 1_000_000), "repair", "garbled time value"),
    ("70,000 tracks", _header(1, 65535, 480) + b"MTrk\x00\x00\x00\x00" * 70_000, "refuse", "more than 65,535 tracks"),
]  # fmt: skip


def million_note_file() -> bytes:
    """1,000,000 notes in 8-note chords, 12,500 s at 120 BPM (under the 4-hour cap)."""
    chord = b"".join(bytes([0x00, 0x90, 48 + i, 100]) for i in range(8))
    chord += bytes([0x60, 0x80, 48, 0]) + b"".join(bytes([0x00, 0x80, 49 + i, 0]) for i in range(7))
    return smf(TEMPO_120 + chord * 125_000 + EOT)


def too_many_events_file() -> bytes:
    """4.2 million two-byte program changes (running status): over the event cap."""
    return smf(b"\x00\xc0\x05" + b"\x00\x05" * 4_200_000 + EOT)
