"""Standard MIDI files in and out: robust import, exact type-1 export.

Import (:func:`read_midi`) works in three layers:

1. **Container** (our own code): the file's bytes are checked and split into chunks. A RIFF
   (``.rmi``) wrapper is removed, bytes before ``MThd`` are skipped, unknown chunks are skipped,
   wrong chunk lengths are corrected from where the next ``MTrk`` really starts, a track cut short
   by the end of the file is read as far as it goes, and the header's format, track count and
   division are checked (SMPTE timing is converted to ticks per quarter note at a fixed tempo;
   division 0 is read as 480).
2. **Events**: each track chunk is parsed by mido. When mido refuses a track (undefined status
   bytes, running status without a status, data bytes above 127, a damaged meta event, a cut-off
   message...) or when its result shows something mido reads wrongly or silently (system
   exclusive followed by running status, data after the end-of-track mark, a missing end-of-track
   mark, time values beyond 4 bytes, an unknown meta event, whose delta time mido 1.3 drops), the
   track is re-read by our tolerant reader, which repairs what it can and counts every repair.
   Tracks larger than :data:`MIDO_MAX_TRACK_BYTES` (64 KiB, about 8,000 notes), all tracks after
   the first :data:`MIDO_MAX_TOTAL_BYTES` (512 KiB) of track data, and tracks with a run of more
   than 8 bytes above 127 (which mido reads in quadratic time) go to the tolerant reader directly:
   on well-formed data it gives exactly mido's events (the fuzz test compares the two on every
   track mido accepts) and is about five times faster, which keeps a million-note file within
   seconds.
3. **Song**: notes are paired (note-on with velocity 0 is a note-off; a note-off closes the oldest
   sounding note of that key; duplicates at the same moment are merged; notes left sounding are
   closed at the end of their track), each channel of a MIDI track becomes a song track (channel
   10 is drums) with the track's name and its first program, and tempo, meter, key and markers
   from any track go to the song's conductor lists. A format-2 file's patterns are placed one
   after another. Text meta events (lyrics, copyright, text, cue markers, instrument, program and
   device names, a second track name) and complete system-exclusive messages are kept as
   :class:`~musicgen_app.core.song.MetaEvent` values with their raw bytes: in the first song track
   made from their MIDI track, in ``Song.meta`` when they come from a first track without notes
   (the conductor track), or in a song track of their own (no notes) for a later MIDI track that
   has no channel events (a karaoke file's lyrics track; it gets the highest channel no other
   track uses, so that the program its channel is set to at playback changes no instrument).
   Text is bytes in a MIDI file; mido
   decodes it as latin-1, which maps every byte to one character, so encoding back as latin-1
   gives the file's bytes exactly, whatever encoding the file used.

Every repair becomes one sentence in :attr:`ImportResult.repairs`, in a musician's words, with
where it first happened ("2 notes had no end and were stopped at the end of their tracks (the
first in track 2, bar 14)"; the technical detail goes to the debug log, ``--verbose``); tracks
that disagree about the meter or key are merged into one map, and that is said too. Each track's
end-of-track time (trailing silence) is kept in :attr:`Track.end_of_track` /
:attr:`Song.end_of_track` when it lies after the track's last event; what the song model cannot
hold (sequencer-specific data, SMPTE offsets, port and channel prefixes, split or escaped system
exclusive) is listed in
:attr:`ImportResult.notices`. Anything that cannot be salvaged raises
:class:`~musicgen_app.errors.MidiImportError` with a message a musician understands.

Caps (a file over a cap is refused, never read for minutes):

- :data:`MAX_FILE_BYTES` = 32 MiB per file; :data:`MAX_TRACKS` = 65,535 tracks and
  :data:`MAX_CHUNKS` = 100,000 chunks;
- :data:`MAX_EVENTS` = 4,000,000 events in all tracks together (a million-note file has about
  2,000,000);
- :data:`MAX_MESSAGE_BYTES` = 1,000,000 bytes per system-exclusive or meta message (a longer one
  ends the track there, as a repair);
- :data:`MAX_SONG_SECONDS` = 4 hours: events later than that (a corrupt time value makes
  "77-hour songs") are dropped, and notes still sounding there are cut, as repairs; the same for
  events after tick :data:`MAX_TICK` (0x0FFFFFFF, the largest time a MIDI file can hold).

Export (:func:`write_midi`, :func:`midi_bytes`, :func:`song_to_mido`) writes SMF type 1: a
conductor track (title, ``Song.meta``, tempo, meter, key, markers) and one track per song track
with its name, program change and events, all on the track's channel (10 for drum tracks); at
equal ticks kept meta and system-exclusive events come first (in their own order; a GM reset
before the program change), then note-offs, control changes and note-ons, so import -> export ->
import gives the same song. A track with only meta events (no notes, no controls, program 0, not
drums) is written without a program change, so that a lyrics track changes no instrument. Each
track ends at its kept end-of-track time. Export refuses (:class:`MidiExportError`, one message
naming the problem) whatever the reader would refuse, cut or drop (the caps below, shared by
both), and writes a too-long text or lyric event as several. The loop region lives only in
project files.

**Chords.** The song's chord lane (``Song.chords``) is written as marker events on the conductor
track, one per chord change, whose text is :data:`CHORD_MARKER_PREFIX` and the symbol (``Chord:
Am7``, ``Chord: N.C.``), before the song's other markers at the same tick, so a DAW shows them on
its marker ruler. On import, a marker becomes a chord only when its text is exactly that prefix and
a symbol spelled as the app spells it, and it is the first such marker at its tick (so our own
exports round-trip exactly, byte for byte); every other marker ("Verse", "A", "Chorus", a chord in
another spelling, a second chord marker at one tick) stays a marker, untouched.
"""

from __future__ import annotations

import io
import logging
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mido
from mido.midifiles.meta import KeySignatureError, build_meta_message

from musicgen_app.core.chords import ChordChange, ChordError, parse_chord
from musicgen_app.core.safe_io import over_cap_error as _over_cap
from musicgen_app.core.safe_io import read_file_capped, write_file_atomic
from musicgen_app.core.song import (
    DEFAULT_RESOLUTION,
    DRUM_CHANNEL,
    TEXT_META_TYPES,
    ControlEvent,
    KeySignature,
    Marker,
    MetaEvent,
    Note,
    Song,
    TempoChange,
    TempoMap,
    TimeSignature,
    Track,
)
from musicgen_app.errors import MidiExportError, MidiImportError

logger = logging.getLogger(__name__)

# -- caps: what the reader accepts is what the writer may write (one place for both) ------------
# The reader refuses or cuts what lies beyond these; export (:func:`_check_song`) refuses it, or
# splits it where that loses nothing (a long lyric becomes several lyric events), so that every
# file we write reads back as the same song.
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_EVENTS = 4_000_000  # in all tracks together, end-of-track marks and names included
MAX_MESSAGE_BYTES = 1_000_000  # the payload of one meta or system-exclusive event
MAX_SONG_SECONDS = 4 * 3600
MAX_TICK = 0x0FFFFFFF  # the largest delta time a MIDI file can hold
MAX_TRACKS = 65_535  # the most a MIDI header can announce (the conductor track included)
MAX_CHUNKS = 100_000
MAX_METER_NUMERATOR = 255  # one byte in the file
MAX_METER_DENOMINATOR = 128  # a power of two; larger ones are read as damage
MAX_TEMPO_US = 0xFFFFFF  # three bytes of microseconds per quarter note (0 is read as damage)
MIDO_MAX_TRACK_BYTES = 64 * 1024
MIDO_MAX_TOTAL_BYTES = 512 * 1024  # beyond this much track data, every track goes to our reader
MIDI_EXTENSIONS = (".mid", ".midi", ".smf", ".kar", ".rmi")

# Errors mido raises on damaged track data (read_track, read_message, meta decoders).
_MIDO_ERRORS = (OSError, EOFError, ValueError, IndexError, KeyError, TypeError, KeySignatureError)

# Data bytes that follow each channel status nibble.
_CHANNEL_DATA_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
# System common / real-time status bytes (not allowed in files) and their data lengths.
_SYSTEM_DATA_LEN = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFE: 0}
_UNDEFINED_STATUS = frozenset((0xF4, 0xF5, 0xF9, 0xFD))
# A variable-length number longer than this is garbage (MIDI allows 4 bytes; up to 8 are read).
_MAX_VLQ_BYTES = 8
# mido reads variable-length numbers without a limit, in quadratic time: such runs go to our reader
_HIGH_BYTE_RUN = re.compile(rb"[\x80-\xff]{%d}" % (_MAX_VLQ_BYTES + 1))
# SMPTE frame code -> (whole frames per second, microseconds per quarter for one quarter per second)
_SMPTE_FPS = {
    24: (24, 1_000_000),
    25: (25, 1_000_000),
    29: (30, round(1e6 * 30 / 29.97)),
    30: (30, 1_000_000),
}

# mido's attribute for the text of a text meta event, where it is not "text"; mido does not know
# 0x08 (program name): it reads it as an unknown meta event (and loses its delta time)
_MIDO_TEXT_ATTR = {"track_name": "name", "instrument_name": "name", "device_name": "name"}

# Internal event tuples produced by both readers (``delta`` in ticks):
#   (delta, status, data1, data2)       channel message, status 0x80..0xEF incl. channel
#   (delta, 0xFF, meta_message)         decoded meta message (a mido MetaMessage)
#   (delta, 0xF0, data | None)          system exclusive: the bytes between F0 and F7, or None
#                                       for a packet that is not one whole message (F7 escape,
#                                       split message, data byte above 127)
_Event = tuple


# -- reports ------------------------------------------------------------------------------------
# key -> (one, many, technical): the sentences speak to a musician; the technical detail (status
# bytes, chunks) goes to the debug log (`musicgen --verbose`).
_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "no_note_off": (
        "1 note had no end and was stopped at the end of its track",
        "{n} notes had no end and were stopped at the end of their tracks",
        "note-on without a note-off",
    ),
    "orphan_off": (
        "1 note end without a started note was ignored",
        "{n} note ends without a started note were ignored",
        "note-off without a matching note-on",
    ),
    "duplicate": (
        "1 duplicate note (the same key struck twice at the same moment) was merged",
        "{n} duplicate notes (the same key struck twice at the same moment) were merged",
        "two note-ons of one key at one tick",
    ),
    "clamped": (
        "1 value above 127 (the MIDI maximum) was set to 127",
        "{n} values above 127 (the MIDI maximum) were set to 127",
        "data byte above 0x7F clamped",
    ),
    "stray_data": (
        "1 damaged byte was skipped",
        "{n} damaged bytes were skipped",
        "data bytes without a status byte (no running status)",
    ),
    "undefined_status": (
        "1 unknown command byte was skipped",
        "{n} unknown command bytes were skipped",
        "undefined status byte 0xF4, 0xF5, 0xF9 or 0xFD",
    ),
    "system_msg": (
        "1 live-performance message (clock, start, stop...), which does not belong in a file, was ignored",
        "{n} live-performance messages (clock, start, stop...), which do not belong in a file, were ignored",
        "system real-time or common message in a track",
    ),
    "long_vlq": (
        "1 time value was written in a longer form than MIDI allows; it was read as written",
        "{n} time values were written in a longer form than MIDI allows; they were read as written",
        "variable-length quantity of more than 4 bytes",
    ),
    "rs_after_sysex": (
        "1 event after a system-exclusive message lacked its own command and was read with the one before",
        "{n} events after system-exclusive messages lacked their own command and were read with the one "
        "before",
        "running status after a system-exclusive message",
    ),
    "bad_tempo": (
        "1 damaged tempo change was ignored",
        "{n} damaged tempo changes were ignored",
        "set_tempo of 0 or with a wrong length",
    ),
    "bad_meter": (
        "1 damaged time signature was ignored",
        "{n} damaged time signatures were ignored",
        "time_signature meta event with numerator 0, a denominator over 2^7 or a wrong length",
    ),
    "bad_key": (
        "1 damaged key signature was ignored",
        "{n} damaged key signatures were ignored",
        "key_signature meta event mido cannot decode",
    ),
    "bad_meta": (
        "1 damaged text or information event was ignored",
        "{n} damaged text or information events were ignored",
        "meta event mido cannot decode",
    ),
    "no_eot": (
        "1 track had no end mark; it was read to the end of its data",
        "{n} tracks had no end mark; they were read to the end of their data",
        "MTrk without an end-of-track meta event",
    ),
    "after_eot": (
        "1 track had data after its end mark; the data was ignored",
        "{n} tracks had data after their end mark; the data was ignored",
        "bytes after the end-of-track meta event",
    ),
    "truncated_event": (
        "1 track ended in the middle of an event; the incomplete event was dropped",
        "{n} tracks ended in the middle of an event; the incomplete events were dropped",
        "MTrk data ends inside an event",
    ),
    "bad_vlq": (
        "1 track held a garbled time value; the rest of the track was dropped",
        "{n} tracks held a garbled time value; the rest of each was dropped",
        "variable-length quantity longer than 8 bytes",
    ),
    "long_message": (
        "1 track held an event longer than {cap} bytes; the track was read up to it",
        "{n} tracks held an event longer than {cap} bytes; the tracks were read up to it",
        "meta or sysex payload over MAX_MESSAGE_BYTES",
    ),
    "unknown_chunk": (
        "1 block of unknown data was skipped",
        "{n} blocks of unknown data were skipped",
        "chunk with an id other than MTrk",
    ),
    "dup_tempo": (
        "1 tempo change contradicted another at the same moment; the later one was kept",
        "{n} tempo changes contradicted others at the same moment; the later ones were kept",
        "two set_tempo values at one tick",
    ),
    "dup_meter": (
        "1 time signature contradicted another at the same moment; the later one was kept",
        "{n} time signatures contradicted others at the same moment; the later ones were kept",
        "two time_signature values at one tick",
    ),
    "dup_key": (
        "1 key signature contradicted another at the same moment; the later one was kept",
        "{n} key signatures contradicted others at the same moment; the later ones were kept",
        "two key_signature values at one tick",
    ),
    "beyond_cap": (
        "1 event lying more than 4 hours into the song, or beyond the last moment a MIDI file can "
        "hold (a damaged time value?), was dropped",
        "{n} events lying more than 4 hours into the song, or beyond the last moment a MIDI file can "
        "hold (a damaged time value?), were dropped",
        "events after MAX_SONG_SECONDS or tick 0x0FFFFFFF",
    ),
    "cut_at_cap": (
        "1 note still sounding at that limit was cut there",
        "{n} notes still sounding at that limit were cut there",
        "note-offs moved to the cap",
    ),
    "long_silence": (
        "the silence at the end of 1 track ran past 4 hours and was cut there",
        "the silence at the end of {n} tracks ran past 4 hours and was cut there",
        "end-of-track after the cap moved to the cap",
    ),
    "smpte_tempo": (
        "1 tempo change was ignored: the file counts time in video frames, not beats",
        "{n} tempo changes were ignored: the file counts time in video frames, not beats",
        "set_tempo in a file with SMPTE division",
    ),
    # notices (things the song model does not keep)
    "sysex": (
        "1 system-exclusive packet that is not one whole message (split, or an F7 escape) was left out",
        "{n} system-exclusive packets that are not whole messages (split, or F7 escapes) were left out",
        "F7 escape, split sysex or sysex with a byte above 0x7F",
    ),
    "other_meta": (
        "1 other meta event (port, sequencer data...) was left out",
        "{n} other meta events (port, sequencer data...) were left out",
        "sequencer-specific, SMPTE offset, channel/port prefix or unknown meta events",
    ),
}


def _plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 note"``, ``"3 notes"``, ``"1,200 notes"``."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _was(n: int) -> str:
    return "was" if n == 1 else "were"


class _Report:
    """Counts repairs by kind and keeps one-off sentences, in the order they first happened.

    A report made with ``locate=True`` keeps where each kind first happened: the file's track
    (``track``, 1-based) and tick (``pos``) current at the first count, set by the readers as they
    go; :meth:`sentences` names it as a bar ("(the first in track 2, bar 14)").
    """

    def __init__(self, *, locate: bool = False) -> None:
        self._items: dict[str, int | str] = {}
        self._where: dict[str, tuple[int | None, int]] = {}
        self._ignored: frozenset[str] = frozenset()
        self.locate = locate
        self.track: int | None = None
        self.pos: int | None = None

    def ignoring(self, *keys: str) -> _Report:
        """A view of this report that drops counts of ``keys`` (and keeps everything else)."""
        view = _Report(locate=self.locate)
        view._items = self._items
        view._where = self._where
        view._ignored = frozenset(keys)
        view.track = self.track
        return view

    def count(self, key: str, n: int = 1) -> None:
        if n and key not in self._ignored:
            self._items[key] = int(self._items.get(key, 0)) + n
            if self.locate and self.pos is not None and key not in self._where:
                self._where[key] = (self.track, self.pos)

    def say(self, sentence: str) -> None:
        self._items[sentence] = sentence

    def sentences(self, song: Song | None = None) -> list[str]:
        """The report's sentences; with ``song``, a located kind names its first bar."""
        out = []
        for key, value in self._items.items():
            if isinstance(value, str):
                out.append(value)
                continue
            one, many, technical = _TEMPLATES[key]
            text = (one if value == 1 else many).format(n=f"{value:,}", cap=f"{MAX_MESSAGE_BYTES:,}")
            where = self._where.get(key)
            if where is not None and song is not None:
                track, tick = where
                place = (f"track {track}, " if track is not None else "") + f"bar {bar_at(song, tick):,}"
                text += f" ({place})" if value == 1 else f" (the first in {place})"
            logger.debug(
                "MIDI import detail: %s x%d (first at file track %s, tick %s)",
                technical,
                value,
                *(where or (None, None)),
            )
            out.append(text)
        return out


@dataclass
class ImportResult:
    """A song read from a MIDI file, with every repair made on the way.

    ``repairs`` are sentences about damage that was fixed; ``notices`` about what the song model
    does not keep (sequencer data, split system exclusive...) or conversions (SMPTE timing, RIFF
    wrapper, format 2); ``midi_format`` is the format the header declared.
    """

    song: Song
    repairs: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    midi_format: int | None = None


# -- container ----------------------------------------------------------------------------------
def _looks_like_chunk_id(b: bytes) -> bool:
    return len(b) == 4 and all(0x20 <= c <= 0x7E for c in b)


def _refuse_not_midi(data: bytes) -> MidiImportError:
    if data.startswith(b"SMF2CLIP"):
        return MidiImportError("this is a MIDI 2.0 clip file, which musicgen cannot read yet")
    if data.startswith(b"SMF2CON1"):
        return MidiImportError("this is a MIDI 2.0 container file, which musicgen cannot read yet")
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and sum(c.isprintable() or c.isspace() for c in text) >= 0.95 * len(text):
        return MidiImportError("this is a text file, not a MIDI file")
    return MidiImportError("this is not a MIDI file (it does not start as one)")


def _unwrap_riff(data: bytes, notices: _Report) -> bytes:
    """The SMF inside a RIFF RMID file (or ``data`` unchanged when it is not one)."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"RMID"):
        return data
    pos = 12
    for _ in range(1000):  # a real RMID file has a handful of chunks
        if pos + 8 > len(data):
            break
        cid = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if cid == b"data":
            notices.say("the MIDI data was unwrapped from a RIFF (.rmi) file")
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    return data  # no data chunk: let the MThd search below decide


@dataclass
class _Container:
    fmt: int
    declared_tracks: int
    division: int
    tracks: list[bytes]
    cut_short: set[int] = field(default_factory=set)  # indexes of tracks the file ends inside


def _split_chunks(data: bytes, fix: _Report, notices: _Report) -> _Container:
    n = len(data)
    if n == 0:
        raise MidiImportError("the file is empty")
    data = _unwrap_riff(data, notices)
    start = data.find(b"MThd")
    if start < 0:
        raise _refuse_not_midi(data)
    if start > 0:
        fix.say(f"{_plural(start, 'byte')} of other data before the music {_was(start)} skipped")
    data = data[start:]
    n = len(data)
    if n < 14:
        raise MidiImportError("the file is cut short inside its header")
    (hlen,) = struct.unpack(">I", data[4:8])
    fmt, ntrks, division = struct.unpack(">HHH", data[8:14])
    body = 8 + hlen
    if hlen != 6 and not (
        hlen > 6 and body <= n and (body == n or _looks_like_chunk_id(data[body : body + 4]))
    ):
        fix.say("the file's header had a wrong length; it was read as usual")
        logger.debug("MIDI import detail: MThd length %d instead of 6", hlen)
        body = 14
    tracks: list[bytes] = []
    cut_short: set[int] = set()
    pos = body
    chunks = 0
    while pos < n:
        chunks += 1
        if len(tracks) > MAX_TRACKS or chunks > MAX_CHUNKS:
            raise MidiImportError(
                f"the file holds more than {MAX_TRACKS:,} tracks or {MAX_CHUNKS:,} blocks (is it damaged?)"
            )
        if n - pos < 8:
            fix.say(f"{_plural(n - pos, 'stray byte')} at the end of the file {_was(n - pos)} ignored")
            break
        cid = data[pos : pos + 4]
        (clen,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        begin, end = pos + 8, pos + 8 + clen
        # the declared length is right when the next chunk or the end of the file follows it, or
        # when the chunk ends with an end-of-track mark (then what follows is junk of its own)
        consistent = end == n or (
            end < n and (_looks_like_chunk_id(data[end : end + 4]) or data[end - 3 : end] == b"\xff\x2f\x00")
        )
        if cid == b"MTrk":
            number = len(tracks) + 1
            if consistent:
                tracks.append(data[begin:end])
                pos = end
                continue
            nxt = data.find(b"MTrk", begin)
            if nxt >= 0:
                fix.say(f"track {number}'s recorded length was wrong; it was read up to the next track")
                logger.debug(
                    "MIDI import detail: MTrk %d declares %d bytes, %d found", number, clen, nxt - begin
                )
                tracks.append(data[begin:nxt])
                pos = nxt
            elif end > n:
                fix.say(f"track {number} is cut short: the file ends inside it")
                cut_short.add(len(tracks))
                tracks.append(data[begin:])
                pos = n
            else:
                tracks.append(data[begin:end])
                pos = end
        elif _looks_like_chunk_id(cid):
            if consistent:
                fix.count("unknown_chunk")
                pos = end
                continue
            nxt = data.find(b"MTrk", begin)
            if nxt < 0:
                fix.say(
                    f"{_plural(n - pos, 'byte')} of unreadable data at the end of the file "
                    f"{_was(n - pos)} ignored"
                )
                break
            fix.say(f"a damaged block of {_plural(nxt - pos, 'byte')} was skipped")
            pos = nxt
        else:
            nxt = data.find(b"MTrk", pos)
            if nxt < 0:
                fix.say(
                    f"{_plural(n - pos, 'unreadable byte')} at the end of the file {_was(n - pos)} ignored"
                )
                break
            fix.say(f"{_plural(nxt - pos, 'unreadable byte')} between tracks {_was(nxt - pos)} skipped")
            pos = nxt
    if not tracks:
        if ntrks == 0:
            raise MidiImportError("the file holds no tracks (nothing to import)")
        raise MidiImportError(f"the file announces {ntrks} tracks but holds none (it is damaged)")
    if ntrks != len(tracks):
        fix.say(
            f"the file says it holds {_plural(ntrks, 'track')} but holds {len(tracks):,}; "
            f"{'it was' if len(tracks) == 1 else 'all were'} read"
        )
    return _Container(fmt, ntrks, division, tracks, cut_short)


# -- events: mido -------------------------------------------------------------------------------
def _events_from_mido(chunk: bytes) -> list[_Event] | None:
    """The track's events as parsed by mido, or None when mido refuses it or would misread it."""
    smf = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(chunk)) + chunk
    try:
        track = mido.MidiFile(file=io.BytesIO(smf)).tracks[0]
    except _MIDO_ERRORS as exc:
        logger.debug("mido refused a track (%s); reading it tolerantly", exc)
        return None
    if not track or track[-1].type != "end_of_track":
        return None
    out: list[_Event] = []
    append = out.append
    for msg in track:
        t = msg.type
        delta = msg.time
        if delta > 0x0FFFFFFF:
            return None
        if t == "note_on":
            append((delta, 0x90 | msg.channel, msg.note, msg.velocity))
        elif t == "note_off":
            append((delta, 0x80 | msg.channel, msg.note, msg.velocity))
        elif t == "control_change":
            append((delta, 0xB0 | msg.channel, msg.control, msg.value))
        elif t == "program_change":
            append((delta, 0xC0 | msg.channel, msg.program, 0))
        elif t == "pitchwheel":
            v = msg.pitch + 8192
            append((delta, 0xE0 | msg.channel, v & 0x7F, v >> 7))
        elif t == "aftertouch":
            append((delta, 0xD0 | msg.channel, msg.value, 0))
        elif t == "polytouch":
            append((delta, 0xA0 | msg.channel, msg.note, msg.value))
        elif t == "sysex":
            return None  # mido misreads running status after sysex: let the tolerant reader decide
        elif msg.is_meta:
            if (t == "end_of_track" and msg is not track[-1]) or t == "unknown_meta":
                return None  # mido 1.3 loses the delta time of an unknown meta event
            append((delta, 0xFF, msg))
        else:  # system common / real-time messages mido accepts
            return None
    return out


# -- events: tolerant reader --------------------------------------------------------------------
def _events_tolerant(chunk: bytes, fix: _Report, budget: int) -> list[_Event]:
    """Read a track's events whatever the damage, counting every repair in ``fix`` (at the tick
    where it happened: ``fix.pos``)."""
    out: list[_Event] = []
    append = out.append
    data = chunk
    n = len(data)
    pos = 0
    tick = fix.pos = 0
    running = 0
    after_sysex = False
    pending = 0  # delta time carried over skipped events
    while pos < n:
        # delta time (variable length)
        delta = 0
        start = pos
        while pos < n:
            b = data[pos]
            pos += 1
            delta = (delta << 7) | (b & 0x7F)
            if b < 0x80:
                break
            if pos - start == _MAX_VLQ_BYTES:
                fix.count("bad_vlq")
                return out
        else:
            fix.count("truncated_event")
            return out
        if pos - start > 4:
            fix.count("long_vlq")
        tick += delta  # (before adding the delta carried over skipped events: counted already)
        fix.pos = tick
        delta += pending
        pending = 0
        if pos >= n:
            fix.count("truncated_event")
            return out
        status = data[pos]
        if status < 0x80:
            if not running:
                # no status to run on: skip to the next status byte and read it with this delta
                skip = pos
                while pos < n and data[pos] < 0x80:
                    pos += 1
                fix.count("stray_data", pos - skip)
                if pos >= n:
                    fix.count("truncated_event")
                    return out
                status = data[pos]
            else:
                if after_sysex:
                    fix.count("rs_after_sysex")
                    after_sysex = False
                status = running
                pos -= 1  # the data byte is read below
        if status < 0xF0:
            pos += 1
            length = _CHANNEL_DATA_LEN[status & 0xF0]
            if pos + length > n:
                fix.count("truncated_event")
                return out
            d1 = data[pos]
            d2 = data[pos + 1] if length == 2 else 0
            pos += length
            if d1 > 127 or d2 > 127:
                fix.count("clamped", (d1 > 127) + (d2 > 127))
                d1, d2 = min(d1, 127), min(d2, 127)
            running = status
            after_sysex = False
            append((delta, status, d1, d2))
        elif status == 0xFF:
            if pos + 1 >= n:
                fix.count("truncated_event")
                return out
            meta_type = data[pos + 1]
            span = _payload(data, pos + 2, fix)
            if span is None:
                return out
            payload = data[span[0] : span[1]]
            pos = span[1]
            if meta_type == 0x2F:
                if pos < n:
                    fix.count("after_eot")
                append((delta, 0xFF, mido.MetaMessage("end_of_track")))
                return out
            msg = _decode_meta(meta_type, payload, fix)
            if msg is None:
                pending = delta
            else:
                append((delta, 0xFF, msg))
        elif status in (0xF0, 0xF7):
            span = _payload(data, pos + 1, fix)
            if span is None:
                return out
            pos = span[1]
            after_sysex = True
            append((delta, 0xF0, _sysex_data(status, data[span[0] : span[1]])))
        elif status in _UNDEFINED_STATUS:
            pos += 1
            fix.count("undefined_status")
            pending = delta
        else:
            pos += 1 + _SYSTEM_DATA_LEN[status]
            fix.count("system_msg")
            pending = delta
        if len(out) > budget:
            raise _too_many_events()
    fix.count("no_eot")
    return out


def _sysex_data(status: int, payload: bytes) -> bytes | None:
    """The bytes between F0 and F7 of a whole system-exclusive message, or None for anything else
    (an F7 escape packet, the first part of a split message, a data byte above 127)."""
    if status != 0xF0 or not payload or payload[-1] != 0xF7:
        return None
    body = payload[:-1]
    return body if not body or max(body) < 0x80 else None


def _payload(data: bytes, pos: int, fix: _Report) -> tuple[int, int] | None:
    """(start, end) of the length-prefixed payload at ``pos``; None (counted) when it runs past the
    track or over :data:`MAX_MESSAGE_BYTES`."""
    length, start, ok = _read_length(data, pos, fix)
    if not ok:
        return None
    if length > MAX_MESSAGE_BYTES:
        fix.count("long_message")
        return None
    if start + length > len(data):
        fix.count("truncated_event")
        return None
    return start, start + length


def _read_length(data: bytes, pos: int, fix: _Report) -> tuple[int, int, bool]:
    """A variable-length number at ``pos``: (value, new position, complete?)."""
    value = 0
    start = pos
    n = len(data)
    while pos < n:
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            if pos - start > 4:
                fix.count("long_vlq")
            return value, pos, True
        if pos - start == _MAX_VLQ_BYTES:
            fix.count("bad_vlq")
            return 0, pos, False
    fix.count("truncated_event")
    return 0, pos, False


_BAD_META_KEY = {0x51: "bad_tempo", 0x58: "bad_meter", 0x59: "bad_key"}


def _decode_meta(meta_type: int, payload: bytes, fix: _Report) -> mido.MetaMessage | None:
    """The meta event as mido decodes it, or None (counted) when it is damaged.

    Like mido, a payload longer than its type needs is read from its first bytes.
    """
    try:
        return build_meta_message(meta_type, list(payload))
    except (IndexError, ValueError, KeyError, TypeError, KeySignatureError):
        fix.count(_BAD_META_KEY.get(meta_type, "bad_meta"))
        return None


def _too_many_events() -> MidiImportError:
    return MidiImportError(
        f"the file holds more than {MAX_EVENTS:,} events, more than this app reads (is it damaged?)"
    )


# -- song -----------------------------------------------------------------------------------------
def _text(value: str) -> str:
    """mido decodes text as latin-1; most writers today use UTF-8."""
    raw = value.encode("latin-1", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value


@dataclass
class _Channel:
    notes: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # Note fields, in order
    controls: list[ControlEvent] = field(default_factory=list)  # in file order, programs included


@dataclass
class _Timing:
    resolution: int
    smpte_tempo_us: int | None = None


def _timing(division: int, fix: _Report, notices: _Report) -> _Timing:
    if division & 0x8000:
        fps_code = 256 - (division >> 8)
        subframes = division & 0xFF
        if fps_code in _SMPTE_FPS and subframes:
            nominal, tempo_us = _SMPTE_FPS[fps_code]
            resolution = nominal * subframes
            fps_name = "29.97" if fps_code == 29 else str(fps_code)
            notices.say(
                f"the file counts time in SMPTE frames ({fps_name} fps x {subframes}); converted to "
                f"{resolution} ticks per quarter note at {60e6 / tempo_us:.2f} BPM (same timing)"
            )
            return _Timing(resolution, tempo_us)
        fix.say(
            f"the header's SMPTE timing ({fps_code} fps x {subframes}) is impossible; "
            "read as 480 ticks per quarter note"
        )
        return _Timing(DEFAULT_RESOLUTION)
    if division == 0:
        fix.say("the header gives 0 ticks per quarter note (impossible); read as 480")
        return _Timing(DEFAULT_RESOLUTION)
    return _Timing(division)


def _build_song(
    tracks: list[list[_Event]], fmt: int, timing: _Timing, fix: _Report, notices: _Report
) -> Song:
    song = Song(resolution=timing.resolution, tempos=[], time_signatures=[])
    tempos: list[TempoChange] = []
    meters: list[TimeSignature] = []
    keys: list[KeySignature] = []
    offset = 0
    meta_only: list[Track] = []
    conductor_ends: list[int] = []  # end-of-track ticks of MIDI tracks that make no song track
    meters_by_track: dict[int, list[TimeSignature]] = {}  # file track number -> its meters
    keys_by_track: dict[int, list[KeySignature]] = {}
    for index, events in enumerate(tracks):
        first_new = len(song.tracks)
        fix.track = index + 1
        tick = offset
        name: str | None = None
        kept: list[MetaEvent] = []
        channels: dict[int, _Channel] = {}
        open_notes: dict[int, list[tuple[int, int]]] = {}  # key = channel << 7 | pitch
        absorb: dict[int, int] = {}
        track_tempos_at_start = False
        for ev in events:
            tick += ev[0]
            status = ev[1]
            kind = status & 0xF0
            if kind == 0x90 and ev[3]:
                key = (status & 0x0F) << 7 | ev[2]
                stack = open_notes.get(key)
                if stack is None:
                    open_notes[key] = [(tick, ev[3])]
                elif stack and stack[-1][0] == tick:
                    fix.pos = tick
                    fix.count("duplicate")
                    absorb[key] = absorb.get(key, 0) + 1
                else:
                    stack.append((tick, ev[3]))
            elif kind == 0x80 or kind == 0x90:
                key = (status & 0x0F) << 7 | ev[2]
                stack = open_notes.get(key)
                if stack:
                    start, velocity = stack.pop(0)
                    ch = status & 0x0F
                    acc = channels.get(ch)
                    if acc is None:
                        acc = channels[ch] = _Channel()
                    acc.notes.append((start, ev[2], tick, velocity, ch))
                elif absorb.get(key):
                    absorb[key] -= 1
                else:
                    fix.pos = tick
                    fix.count("orphan_off")
            elif status == 0xFF:
                msg = ev[2]
                t = msg.type
                fix.pos = tick
                if t == "set_tempo":
                    if timing.smpte_tempo_us is not None:
                        fix.count("smpte_tempo")
                    elif msg.tempo <= 0:
                        fix.count("bad_tempo")
                    else:
                        tempos.append(TempoChange(tick, msg.tempo))
                        track_tempos_at_start |= tick == offset
                elif t == "time_signature":
                    if msg.numerator < 1 or msg.denominator > MAX_METER_DENOMINATOR:
                        fix.count("bad_meter")
                    else:
                        meters.append(TimeSignature(tick, msg.numerator, msg.denominator))
                        meters_by_track.setdefault(index + 1, []).append(meters[-1])
                elif t == "key_signature":
                    keys.append(KeySignature(tick, msg.key))
                    keys_by_track.setdefault(index + 1, []).append(keys[-1])
                elif t == "marker":
                    song.markers.append(Marker(tick, _text(msg.text)))
                elif t == "track_name" and name is None:
                    name = _text(msg.name)
                elif t in TEXT_META_TYPES:
                    # mido decodes as latin-1: encoding back gives the file's bytes
                    value = getattr(msg, _MIDO_TEXT_ATTR.get(t, "text"))
                    kept.append(MetaEvent(tick, t, value.encode("latin-1", errors="replace")))
                elif t == "unknown_meta" and msg.type_byte == TEXT_META_TYPES["program_name"]:
                    kept.append(MetaEvent(tick, "program_name", bytes(msg.data)))
                elif t != "end_of_track":
                    notices.count("other_meta")
            elif status == 0xF0:
                if ev[2] is None:
                    notices.count("sysex")
                else:
                    kept.append(MetaEvent(tick, "sysex", ev[2]))
            else:
                ch = status & 0x0F
                acc = channels.get(ch)
                if acc is None:
                    acc = channels[ch] = _Channel()
                if kind == 0xC0:
                    acc.controls.append(ControlEvent(tick, "program_change", ev[2], 0, ch))
                elif kind == 0xB0:
                    acc.controls.append(ControlEvent(tick, "control_change", ev[2], ev[3], ch))
                elif kind == 0xE0:
                    acc.controls.append(ControlEvent(tick, "pitchwheel", 0, (ev[2] | ev[3] << 7) - 8192, ch))
                elif kind == 0xD0:
                    acc.controls.append(ControlEvent(tick, "aftertouch", 0, ev[2], ch))
                else:  # 0xA0
                    acc.controls.append(ControlEvent(tick, "polytouch", ev[2], ev[3], ch))
        end = tick
        unclosed = 0
        fix.pos = min((stack[0][0] for stack in open_notes.values() if stack), default=None)
        for key, stack in open_notes.items():
            ch, pitch = key >> 7, key & 0x7F
            for start, velocity in stack:
                unclosed += 1
                stop = end if end > start else start + timing.resolution
                acc = channels.setdefault(ch, _Channel())
                acc.notes.append((start, pitch, stop, velocity, ch))
        fix.count("no_note_off", unclosed)
        if fmt == 2 and index > 0 and not track_tempos_at_start and tempos:
            # each pattern of a type-2 file starts at the default tempo
            tempos.append(TempoChange(offset, 500_000))
        if index == 0 and fmt in (1, 2) and name and not channels:
            song.title = name
        if kept and not channels:
            if index == 0:  # the conductor track
                song.meta = kept
            else:  # e.g. a karaoke file's lyrics track (its channel is chosen below)
                song.tracks.append(Track(name=name or "", meta=kept))
                meta_only.append(song.tracks[-1])
        for ch in sorted(channels):
            acc = channels[ch]
            rows = sorted(acc.notes)  # as tuples: the dataclass order, without its slow __lt__
            notes = [Note(*row) for row in rows]
            # the first program change, when no note of the channel comes before it, is the
            # track's program; later ones stay events
            program = 0
            controls = acc.controls
            first_note = notes[0].start_tick if notes else None
            for i, c in enumerate(controls):
                if c.kind == "program_change":
                    if first_note is None or c.tick <= first_note:
                        program = c.number
                        controls = controls[:i] + controls[i + 1 :]
                    break
            song.tracks.append(
                Track(
                    name=name or "",  # every channel of a MIDI track keeps the track's name
                    program=program,
                    channel=ch,
                    is_drum=ch == DRUM_CHANNEL,
                    notes=notes,
                    controls=controls,
                    meta=kept,
                )
            )
            kept = []  # a MIDI track's meta events go to its first song track
        if fmt == 0 and name and not song.title:
            song.title = name
        made = song.tracks[first_new:]
        for made_track in made:  # trailing silence after the track's last event is kept
            if end > _own_last(made_track):
                made_track.end_of_track = end
        if not made:
            conductor_ends.append(end)
        if fmt == 2:
            offset = end
    fix.track = None
    if fmt == 2 and len(tracks) > 1:
        notices.say(f"format 2 file: its {len(tracks)} patterns were placed one after another")
    song.tempos = _last_per_tick(tempos, fix, "dup_tempo")
    if timing.smpte_tempo_us is not None:
        song.tempos = [TempoChange(0, timing.smpte_tempo_us)]
    song.time_signatures = _last_per_tick(meters, fix, "dup_meter")
    song.key_signatures = _last_per_tick(keys, fix, "dup_key")
    _report_disagreement(song, meters_by_track, "meter", "time signatures", fix)
    _report_disagreement(song, keys_by_track, "key", "key signatures", fix)
    song.markers.sort(key=lambda m: m.tick)
    _split_chord_markers(song)
    if conductor_ends and max(conductor_ends) > _conductor_last(song):
        song.end_of_track = max(conductor_ends)
    _apply_length_cap(song, fix)
    if meta_only:
        # a channel no track plays on: the program change that playback sends for every track's
        # channel then changes no instrument (the same channel again after export and import)
        skip = {id(t) for t in meta_only}
        used = {t.channel for t in song.tracks if id(t) not in skip}
        free = next((c for c in range(15, -1, -1) if c not in used and c != DRUM_CHANNEL), 0)
        for track in meta_only:
            track.channel = free
    return song


CHORD_MARKER_PREFIX = "Chord: "


def _chord_markers(song: Song) -> list[Marker]:
    """The chord lane as the markers export writes."""
    return [Marker(c.tick, CHORD_MARKER_PREFIX + c.symbol) for c in song.chords]


def _split_chord_markers(song: Song) -> None:
    """Move the markers export wrote for the chord lane (see the module docstring) to ``song.chords``."""
    chords: dict[int, ChordChange] = {}
    kept: list[Marker] = []
    for mk in song.markers:
        change = _chord_of_marker(mk) if mk.tick not in chords else None
        if change is None:
            kept.append(mk)
        else:
            chords[mk.tick] = change
    if chords:
        song.markers = kept
        song.chords = sorted(chords.values(), key=lambda c: c.tick)


def _chord_of_marker(mk: Marker) -> ChordChange | None:
    if not mk.text.startswith(CHORD_MARKER_PREFIX):
        return None
    symbol = mk.text[len(CHORD_MARKER_PREFIX) :]
    try:
        change = ChordChange(mk.tick, parse_chord(symbol))
    except ChordError:
        return None
    return change if change.symbol == symbol else None


def _report_disagreement(
    song: Song, by_track: dict[int, list[Any]], what: str, events: str, fix: _Report
) -> None:
    """Say so when tracks carry different meter (or key) maps, which import merges into one."""
    if len(by_track) < 2:
        return
    maps = {number: sorted(set(items)) for number, items in by_track.items()}
    first, *others = sorted(maps)
    differing = [n for n in others if maps[n] != maps[first]]
    if not differing:
        return  # the same map in every track (music21 writes one into each): nothing to say
    tick = min(min(e.tick for e in set(maps[first]).symmetric_difference(maps[n])) for n in differing)
    numbers = [first, *differing]
    names = ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"
    fix.say(
        f"tracks {names} disagree about the {what} from bar {bar_at(song, tick):,}; their {events} "
        f"were merged into one {what} for the whole song"
    )


def _last_per_tick(items: list, fix: _Report, key: str) -> list:
    """One event per tick, the last one in file order; conflicting duplicates are counted.

    Identical copies (music21 writes the meter into every track) are merged without a word.
    """
    by_tick: dict[int, object] = {}
    conflicts = 0
    for item in sorted(items, key=lambda e: e.tick):  # stable: file order within a tick
        previous = by_tick.get(item.tick)
        if previous is not None and previous != item:
            if not conflicts:
                fix.pos = item.tick
            conflicts += 1
        by_tick[item.tick] = item
    fix.count(key, conflicts)
    return list(by_tick.values())


def _own_last(track: Track) -> int:
    """The latest tick of the track's notes, channel and meta events (what export writes in it)."""
    return max(
        track.end_tick,
        max((c.tick for c in track.controls), default=0),
        max((m.tick for m in track.meta), default=0),
    )


def _conductor_last(song: Song) -> int:
    """The latest tick of what export writes in the conductor track."""
    items: list[TempoChange | TimeSignature | KeySignature | Marker | MetaEvent | ChordChange] = [
        *song.tempos,
        *song.time_signatures,
        *song.key_signatures,
        *song.markers,
        *song.meta,
        *song.chords,
    ]
    return max((e.tick for e in items), default=0)


def _last_tick(song: Song) -> int:
    """The latest tick of any note end, channel event, kept meta event, tempo, meter, key or
    marker, or track end (:attr:`Song.length_ticks`)."""
    conductor: list[TempoChange | TimeSignature | KeySignature | Marker | MetaEvent | ChordChange] = [
        *song.tempos,
        *song.time_signatures,
        *song.key_signatures,
        *song.markers,
        *song.meta,
        *song.chords,
    ]
    return max(
        song.length_ticks,
        max((c.tick for t in song.tracks for c in t.controls), default=0),
        max((m.tick for t in song.tracks for m in t.meta), default=0),
        max((e.tick for e in conductor), default=0),
    )


def tick_cap(song: Song) -> int:
    """The last tick of ``song`` a MIDI file may hold for this app: :data:`MAX_SONG_SECONDS` into
    the song through its tempo map, and never beyond :data:`MAX_TICK` (import drops what lies
    later; export refuses it)."""
    cutoff = int(TempoMap(song.tempos, song.resolution).seconds_to_tick(MAX_SONG_SECONDS))
    return min(cutoff, MAX_TICK)  # so that every delta time of an export fits in 4 bytes


def _apply_length_cap(song: Song, fix: _Report) -> None:
    cutoff = tick_cap(song)
    if _last_tick(song) <= cutoff:
        return
    dropped = cut = 0
    for track in song.tracks:
        notes = []
        for n in track.notes:
            if n.start_tick > cutoff:
                dropped += 1
            elif n.end_tick > cutoff:
                cut += 1
                notes.append(Note(n.start_tick, n.pitch, cutoff, n.velocity, n.channel))
            else:
                notes.append(n)
        track.notes = notes
        kept = [c for c in track.controls if c.tick <= cutoff]
        dropped += len(track.controls) - len(kept)
        track.controls = kept
        kept_meta = [m for m in track.meta if m.tick <= cutoff]
        dropped += len(track.meta) - len(kept_meta)
        track.meta = kept_meta
    for attr in ("tempos", "time_signatures", "key_signatures", "markers", "meta", "chords"):
        items = getattr(song, attr)
        kept = [e for e in items if e.tick <= cutoff]
        dropped += len(items) - len(kept)
        setattr(song, attr, kept)
    fix.pos = cutoff
    silences = 0
    for holder, last in [(t, _own_last(t)) for t in song.tracks] + [(song, _conductor_last(song))]:
        if holder.end_of_track is not None and holder.end_of_track > cutoff:
            silences += 1
            holder.end_of_track = cutoff if cutoff > last else None
    fix.count("beyond_cap", dropped)
    fix.count("cut_at_cap", cut)
    fix.count("long_silence", silences)


# -- public: import -------------------------------------------------------------------------------
def read_midi(source: str | Path | bytes) -> ImportResult:
    """Read a Standard MIDI File (path or bytes), repairing what can be repaired.

    Raises :class:`MidiImportError` when the file cannot be read or salvaged, or is over a cap.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise _over_cap(len(data), MAX_FILE_BYTES, MidiImportError, "MIDI file")
    else:
        data = read_file_capped(Path(source), MAX_FILE_BYTES, MidiImportError, "MIDI file")
    fix, notices = _Report(locate=True), _Report()
    container = _split_chunks(data, fix, notices)
    fmt = container.fmt
    if fmt > 2:
        fix.say(
            f"the file declares format {fmt}, which does not exist; read as a multi-track file (format 1)"
        )
        fmt = 1
    elif fmt == 0 and len(container.tracks) > 1:
        fix.say(
            f"a format-0 file should hold one track but holds {len(container.tracks):,}; "
            "read as a multi-track file (format 1)"
        )
        fmt = 1
    timing = _timing(container.division, fix, notices)
    tracks: list[list[_Event]] = []
    budget = MAX_EVENTS
    mido_bytes = 0
    for index, chunk in enumerate(container.tracks):
        events = None
        mido_bytes += len(chunk)
        if (
            len(chunk) <= MIDO_MAX_TRACK_BYTES
            and mido_bytes <= MIDO_MAX_TOTAL_BYTES
            and not _HIGH_BYTE_RUN.search(chunk)
        ):
            events = _events_from_mido(chunk)
        if events is None:
            fix.track = index + 1
            # in a track the file ends inside (already said), a missing end is no news
            track_fix = fix.ignoring("no_eot", "truncated_event") if index in container.cut_short else fix
            events = _events_tolerant(chunk, track_fix, budget)
        budget -= len(events)
        if budget < 0:
            raise _too_many_events()
        tracks.append(events)
    song = _build_song(tracks, fmt, timing, fix, notices)
    result = ImportResult(song, fix.sentences(song), notices.sentences(), container.fmt)
    for line in result.repairs:
        logger.info("MIDI import repair: %s", line)
    return result


# -- export ---------------------------------------------------------------------------------------
# Order of events at the same tick: note-offs, then controls and program changes, then note-ons
# (a zero-length note's note-off right after its own note-on).
_ORDER_OFF, _ORDER_CONTROL, _ORDER_ON = 0, 1, 2


def _encode_text(text: str) -> str:
    """UTF-8 bytes as the latin-1 string mido writes byte for byte."""
    return text.encode("utf-8").decode("latin-1")


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track_channel_events(track: Track) -> list[tuple[int, int, int, int]]:
    """One song track's channel events as (tick, status, data1, data2), in file order."""
    ch = DRUM_CHANNEL if track.is_drum else track.channel
    name = track.name or "(unnamed)"
    if not 0 <= ch <= 15:
        raise MidiExportError(f"track '{name}' uses channel {ch + 1}; MIDI has channels 1 to 16")
    if not 0 <= track.program <= 127:
        raise MidiExportError(f"track '{name}' has program {track.program}; MIDI programs are 0 to 127")
    # (tick, order, seq, second, status, d1, d2): a zero-length note's note-off sorts right after
    # its own note-on (same order and seq, second = 1)
    keyed: list[tuple[int, int, int, int, int, int, int]] = []
    on, off = 0x90 | ch, 0x80 | ch
    for seq, n in enumerate(track.notes):
        if not (0 <= n.pitch <= 127 and 0 <= n.start_tick <= n.end_tick and 1 <= n.velocity <= 127):
            raise MidiExportError(f"track '{name}' has a note MIDI cannot hold: {n}")
        keyed.append((n.start_tick, _ORDER_ON, seq, 0, on, n.pitch, n.velocity))
        if n.end_tick == n.start_tick:
            keyed.append((n.end_tick, _ORDER_ON, seq, 1, off, n.pitch, 0))
        else:
            keyed.append((n.end_tick, _ORDER_OFF, seq, 0, off, n.pitch, 0))
    for seq, c in enumerate(track.controls):
        if c.tick < 0:
            raise MidiExportError(f"track '{name}' has an event before the start of the song: {c}")
        if c.kind == "control_change" and 0 <= c.number <= 127 and 0 <= c.value <= 127:
            ev = (0xB0 | ch, c.number, c.value)
        elif c.kind == "program_change" and 0 <= c.number <= 127:
            ev = (0xC0 | ch, c.number, 0)
        elif c.kind == "pitchwheel" and -8192 <= c.value <= 8191:
            v = c.value + 8192
            ev = (0xE0 | ch, v & 0x7F, v >> 7)
        elif c.kind == "aftertouch" and 0 <= c.value <= 127:
            ev = (0xD0 | ch, c.value, 0)
        elif c.kind == "polytouch" and 0 <= c.number <= 127 and 0 <= c.value <= 127:
            ev = (0xA0 | ch, c.number, c.value)
        else:
            raise MidiExportError(f"track '{name}' has an event MIDI cannot hold: {c}")
        keyed.append((c.tick, _ORDER_CONTROL, seq, 0, *ev))
    keyed.sort()
    out = [] if _meta_only(track) else [(0, 0xC0 | ch, track.program, 0)]
    out.extend((e[0], e[4], e[5], e[6]) for e in keyed)
    return out


def _meta_only(track: Track) -> bool:
    """Whether the track holds only meta events, as import makes of a MIDI track without channel
    events (written without a program change, which would change its channel's instrument)."""
    return bool(
        track.meta and not track.notes and not track.controls and track.program == 0 and not track.is_drum
    )


def _meta_message(event: MetaEvent, where: str) -> mido.MetaMessage | mido.Message:
    """A kept meta or system-exclusive event as a mido message (raises MidiExportError)."""
    try:
        if event.tick < 0:
            raise ValueError("it lies before the start of the song")
        if event.kind == "sysex":
            return mido.Message("sysex", data=event.data)
        if event.kind not in TEXT_META_TYPES:
            raise ValueError(f"'{event.kind}' is not a kind of MIDI text event")
        if event.kind == "program_name":
            return mido.UnknownMetaMessage(TEXT_META_TYPES["program_name"], data=event.data)
        attr = _MIDO_TEXT_ATTR.get(event.kind, "text")
        return mido.MetaMessage(event.kind, **{attr: event.data.decode("latin-1")})
    except (ValueError, TypeError) as exc:
        raise MidiExportError(f"{where} has an event MIDI cannot hold ({event}): {exc}") from exc


def _file_bytes(msg: mido.MetaMessage | mido.Message) -> bytes:
    """A meta or system-exclusive message as a MIDI file holds it (after its delta time)."""
    if msg.type == "sysex":
        return b"\xf0" + _vlq(len(msg.data) + 1) + bytes(msg.data) + b"\xf7"
    return bytes(msg.bytes())


def _track_events(track: Track) -> list[tuple[int, int, Any, int]]:
    """:func:`_track_channel_events` with the track's meta events merged in, each before the
    channel events of its tick (status -1, the mido message in place of data1)."""
    events: list = _track_channel_events(track)
    if not track.meta:
        return events
    where = f"track '{track.name or '(unnamed)'}'"
    out: list = []
    i, n = 0, len(events)
    for m in _written_meta(track.meta):  # stable: their own order within a tick
        msg = _meta_message(m, where)
        while i < n and events[i][0] < m.tick:
            out.append(events[i])
            i += 1
        out.append((m.tick, -1, msg, 0))
    out.extend(events[i:])
    return out


def _conductor_events(song: Song) -> list[tuple[int, mido.MetaMessage | mido.Message]]:
    """(tick, message) of the conductor track: title, kept meta/sysex, meter, key, tempo, markers."""
    keyed: list[tuple[int, int, int, mido.MetaMessage | mido.Message]] = []
    try:
        # (a second name among the kept events needs the first one before it, even when empty)
        if song.title or any(m.kind == "track_name" for m in song.meta):
            keyed.append((0, 0, 0, mido.MetaMessage("track_name", name=_encode_text(song.title))))
        for i, m in enumerate(_written_meta(song.meta)):
            keyed.append((m.tick, 1, i, _meta_message(m, "the conductor track")))
        for i, ts in enumerate(song.time_signatures):
            msg = mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator)
            keyed.append((ts.tick, 2, i, msg))
        for i, ks in enumerate(song.key_signatures):
            keyed.append((ks.tick, 3, i, mido.MetaMessage("key_signature", key=ks.key)))
        for i, tc in enumerate(song.tempos):
            keyed.append((tc.tick, 4, i, mido.MetaMessage("set_tempo", tempo=tc.us_per_quarter)))
        for i, mk in enumerate(_chord_markers(song)):  # first: a chord marker is the first at its tick
            keyed.append((mk.tick, 5, i, mido.MetaMessage("marker", text=_encode_text(mk.text))))
        for i, mk in enumerate(song.markers):
            keyed.append((mk.tick, 6, i, mido.MetaMessage("marker", text=_encode_text(mk.text))))
    except (ValueError, TypeError) as exc:
        raise MidiExportError(
            f"the song's tempo, meter, key or markers cannot be written to MIDI: {exc}"
        ) from exc
    if any(e[0] < 0 for e in keyed):
        raise MidiExportError("the song has a tempo, meter, key or marker before its start")
    keyed.sort(key=lambda e: e[:3])
    return [(e[0], e[3]) for e in keyed]


# Kinds of text event that export may write as several events of the same kind at the same tick
# when one is longer than the reader takes (a long lyric or comment; nothing is lost).
SPLITTABLE_META = frozenset(("text", "lyrics"))
_META_WORDS = {
    "text": "text event",
    "copyright": "copyright notice",
    "track_name": "second track name",
    "instrument_name": "instrument name",
    "lyrics": "lyric",
    "cue_marker": "cue",
    "program_name": "program name",
    "device_name": "device name",
    "sysex": "system-exclusive message",
}


def _split_bytes(data: bytes, size: int) -> list[bytes]:
    """``data`` in pieces of at most ``size`` bytes; UTF-8 text is cut between characters."""
    utf8 = True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = False
    pieces = []
    start = 0
    while len(data) - start > size:
        end = start + size
        if utf8:
            while end > start + 1 and data[end] & 0xC0 == 0x80:  # inside a character
                end -= 1
        pieces.append(data[start:end])
        start = end
    pieces.append(data[start:])
    return pieces


def _written_meta(events: list[MetaEvent]) -> list[MetaEvent]:
    """Kept meta events in the order export writes them (by tick, stable), a too-long event of a
    :data:`SPLITTABLE_META` kind split into several."""
    out: list[MetaEvent] = []
    for m in sorted(events, key=lambda e: e.tick):
        if m.kind in SPLITTABLE_META and len(m.data) > MAX_MESSAGE_BYTES:
            out.extend(MetaEvent(m.tick, m.kind, part) for part in _split_bytes(m.data, MAX_MESSAGE_BYTES))
        else:
            out.append(m)
    return out


def bar_at(song: Song, tick: int) -> int:
    """The bar (1-based) that holds ``tick``, through the song's meter changes."""
    sigs = sorted(song.time_signatures) or [TimeSignature(0, 4, 4)]
    if sigs[0].tick > 0:
        sigs.insert(0, TimeSignature(0, 4, 4))
    bar = 1
    for i, ts in enumerate(sigs):
        length = max(1, song.resolution * 4 * max(ts.numerator, 1) // max(ts.denominator, 1))
        end = sigs[i + 1].tick if i + 1 < len(sigs) else None
        if end is None or tick < end:
            return bar + max(0, tick - ts.tick) // length
        bar += -(-(end - ts.tick) // length)  # a bar cut short by the next meter still counts
    return bar


def _check_text(data: bytes, what: str) -> None:
    if len(data) > MAX_MESSAGE_BYTES:
        raise MidiExportError(
            f"{what} is {len(data):,} bytes long; musicgen reads MIDI events of up to "
            f"{MAX_MESSAGE_BYTES:,} bytes (shorten it)"
        )


def _check_meta(events: list[MetaEvent], where: str, song: Song) -> int:
    """Refuses a kept event the reader would cut; returns how many events export writes for them."""
    written = 0
    for m in events:
        size = len(m.data) + (1 if m.kind == "sysex" else 0)  # a sysex payload ends with F7
        if size <= MAX_MESSAGE_BYTES:
            written += 1
        elif m.kind in SPLITTABLE_META:
            written += len(_split_bytes(m.data, MAX_MESSAGE_BYTES))
        else:
            word = _META_WORDS.get(m.kind, m.kind)
            raise MidiExportError(
                f"a {word} in {where} at bar {bar_at(song, m.tick)} is {size:,} bytes long; musicgen "
                f"reads MIDI events of up to {MAX_MESSAGE_BYTES:,} bytes (shorten it)"
            )
    return written


def _check_conductor(song: Song) -> None:
    """Meter and tempo values the reader takes, and no two different ones at one moment."""
    for ts in song.time_signatures:
        den = ts.denominator
        if not (
            1 <= ts.numerator <= MAX_METER_NUMERATOR
            and 1 <= den <= MAX_METER_DENOMINATOR
            and den & (den - 1) == 0
        ):
            raise MidiExportError(
                f"the meter {ts.numerator}/{den} at bar {bar_at(song, ts.tick)} cannot be written to "
                f"MIDI (beats 1 to {MAX_METER_NUMERATOR}; a beat of 1, 2, 4, 8 ... up to "
                f"{MAX_METER_DENOMINATOR})"
            )
    for tc in song.tempos:
        if not 1 <= tc.us_per_quarter <= MAX_TEMPO_US:
            raise MidiExportError(
                f"the tempo at bar {bar_at(song, tc.tick)} ({tc.us_per_quarter:,} microseconds per "
                f"quarter note) cannot be written to MIDI (1 to {MAX_TEMPO_US:,})"
            )
    for items, word in (
        (song.tempos, "tempos"),
        (song.time_signatures, "meters"),
        (song.key_signatures, "keys"),
    ):
        seen: dict[int, object] = {}
        for item in items:
            other = seen.setdefault(item.tick, item)
            if other != item:
                raise MidiExportError(
                    f"the song has two different {word} at the same moment (bar "
                    f"{bar_at(song, item.tick)}); a MIDI file keeps only one: remove the other first"
                )


def _check_song(song: Song) -> None:
    """Refuses (MidiExportError, one message naming the problem) any song whose MIDI file the
    reader would refuse, cut or change: see the caps at the top of this module."""
    if not 1 <= song.resolution <= 0x7FFF:
        raise MidiExportError(
            f"{song.resolution} ticks per quarter note cannot be written to MIDI (1 to 32767)"
        )
    if len(song.tracks) + 1 > MAX_TRACKS:
        raise MidiExportError(
            f"the song has {len(song.tracks):,} tracks; a MIDI file holds at most {MAX_TRACKS - 1:,} "
            "(and its conductor track)"
        )
    _check_conductor(song)
    last = _last_tick(song)
    if last > MAX_TICK:
        raise MidiExportError(f"the song is longer than a MIDI file can hold ({MAX_TICK:,} ticks)")
    cap = tick_cap(song)
    if last > cap:
        hours = MAX_SONG_SECONDS / 3600
        raise MidiExportError(
            f"the song runs to bar {bar_at(song, last):,}, {song.tick_to_seconds(last) / 3600:.1f} "
            f"hours; musicgen reads MIDI files of up to {hours:g} hours (shorten the song)"
        )
    _check_text(song.title.encode("utf-8"), "the song's title")
    events = 1 + bool(song.title or any(m.kind == "track_name" for m in song.meta))  # end, title
    events += len(song.tempos) + len(song.time_signatures) + len(song.key_signatures) + len(song.markers)
    events += len(song.chords)
    for mk in song.markers:
        _check_text(mk.text.encode("utf-8"), f"the marker at bar {bar_at(song, mk.tick)}")
    events += _check_meta(song.meta, "the conductor track", song)
    for i, track in enumerate(song.tracks, 1):
        where = f"track {i} ('{track.name}')" if track.name else f"track {i}"
        _check_text(track.name.encode("utf-8"), f"the name of {where}")
        events += 2 + (not _meta_only(track)) + 2 * len(track.notes) + len(track.controls)
        events += _check_meta(track.meta, where, song)
        if events > MAX_EVENTS:
            break
    if events > MAX_EVENTS:
        notes = sum(len(t.notes) for t in song.tracks)
        raise MidiExportError(
            f"the song is too large for one MIDI file that musicgen can read back ({_plural(notes, 'note')}; "
            f"a MIDI file musicgen reads holds up to {MAX_EVENTS:,} events, about "
            f"{MAX_EVENTS // 2:,} notes): split it into several songs"
        )


def export_notes(song: Song) -> list[str]:
    """What export writes differently from the song, without loss (a long lyric split in pieces)."""
    split = [
        m
        for events in (song.meta, *(t.meta for t in song.tracks))
        for m in events
        if m.kind in SPLITTABLE_META and len(m.data) > MAX_MESSAGE_BYTES
    ]
    if not split:
        return []
    n = len(split)
    return [
        f"{_plural(n, 'text or lyric event')} longer than {MAX_MESSAGE_BYTES:,} bytes "
        f"{'was' if n == 1 else 'were'} written in pieces (several events at the same moment), "
        "as MIDI players read them"
    ]


def song_to_mido(song: Song) -> mido.MidiFile:
    """The song as a mido type-1 file: conductor track first, then one track per song track.

    Message ``time`` is the delta in ticks, as in any mido file; the same events and order as
    :func:`midi_bytes` writes.
    """
    _check_song(song)
    mf = mido.MidiFile(type=1, ticks_per_beat=song.resolution, charset="latin1")
    conductor = mido.MidiTrack()
    last = 0
    for tick, msg in _conductor_events(song):
        conductor.append(msg.copy(time=tick - last))
        last = tick
    _end_track(conductor, last, song.end_of_track)
    mf.tracks.append(conductor)
    for track in song.tracks:
        mt = mido.MidiTrack([mido.MetaMessage("track_name", name=_encode_text(track.name))])
        last = 0
        for tick, status, d1, d2 in _track_events(track):
            if status < 0:
                mt.append(d1.copy(time=tick - last))
            else:
                length = _CHANNEL_DATA_LEN[status & 0xF0]
                raw = (status, d1, d2) if length == 2 else (status, d1)
                mt.append(mido.Message.from_bytes(raw, time=tick - last))
            last = tick
        _end_track(mt, last, track.end_of_track)
        mf.tracks.append(mt)
    return mf


def _end_track(track: mido.MidiTrack, last: int, end: int | None) -> None:
    track.append(mido.MetaMessage("end_of_track", time=end - last if end is not None and end > last else 0))


def midi_bytes(song: Song) -> bytes:
    """The song as the bytes of a type-1 Standard MIDI File (running status, note-off messages)."""
    _check_song(song)
    chunks = [b"MThd" + struct.pack(">IHHH", 6, 1, len(song.tracks) + 1, song.resolution)]
    body = bytearray()
    last = 0
    for tick, msg in _conductor_events(song):
        body += _vlq(tick - last)
        body += _file_bytes(msg)
        last = tick
    chunks.append(_chunk(body, last, song.end_of_track))
    for track in song.tracks:
        body = bytearray(b"\x00")
        body += bytes(mido.MetaMessage("track_name", name=_encode_text(track.name)).bytes())
        last = 0
        running = -1
        for tick, status, d1, d2 in _track_events(track):
            body += _vlq(tick - last) if tick != last else b"\x00"
            if status < 0:  # a kept meta or sysex event; it cancels running status
                body += _file_bytes(d1)
                running = -1
                last = tick
                continue
            if status != running:
                body.append(status)
                running = status
            body.append(d1)
            if _CHANNEL_DATA_LEN[status & 0xF0] == 2:
                body.append(d2)
            last = tick
        chunks.append(_chunk(body, last, track.end_of_track))
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:
        raise MidiExportError(
            f"the song makes a MIDI file of {len(data) / 2**20:.1f} MiB; musicgen reads MIDI files of up "
            f"to {MAX_FILE_BYTES // 2**20} MiB (split it into several songs, or remove long "
            "system-exclusive data)"
        )
    return data


def _chunk(body: bytearray, last: int, end: int | None) -> bytes:
    """A track chunk: ``body`` and the end-of-track mark, at ``end`` when that is later than ``last``."""
    body += _vlq(end - last) if end is not None and end > last else b"\x00"
    body += b"\xff\x2f\x00"  # end of track
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def write_midi(song: Song, path: str | Path) -> list[str]:
    """Write the song as a type-1 Standard MIDI File (raises MidiExportError).

    Written atomically (:func:`write_file_atomic`): an existing file is never left half-written.
    A song whose file the reader would refuse or cut is refused (nothing is written). Returns
    :func:`export_notes`: what was written differently without loss (a long lyric in pieces).
    """
    write_file_atomic(Path(path), midi_bytes(song), MidiExportError)
    notes = export_notes(song)
    for line in notes:
        logger.info("MIDI export: %s", line)
    return notes


def is_midi_path(path: str | Path) -> bool:
    """Whether the path's extension names a MIDI file."""
    return Path(path).suffix.lower() in MIDI_EXTENSIONS


GM_PROGRAM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
    "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
    "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
    "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
    "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola",
    "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
    "Voice Oohs", "Synth Choir", "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax",
    "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute",
    "Recorder", "Pan Flute", "Blown bottle", "Shakuhachi", "Whistle", "Ocarina", "Lead 1 (square)",
    "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)", "Lead 6 (voice)",
    "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)",
    "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise", "Breath Noise",
    "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)  # fmt: skip
