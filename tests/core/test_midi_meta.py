"""Lyrics, copyright, other text events and system exclusive survive import, export and projects.

The files are written by mido and by music21; what comes out is read back by mido (an independent
reader) and compared event by event: same MIDI track, same tick, same bytes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import mido
import pytest

from musicgen_app.core.midi_io import (
    MIDO_MAX_TRACK_BYTES,
    midi_bytes,
    read_midi,
    song_to_mido,
    write_midi,
)
from musicgen_app.core.project import (
    FORMAT_VERSION,
    Project,
    load_project,
    project_from_json,
    project_to_json,
    save_project,
)
from musicgen_app.core.song import MetaEvent, Note, Song, Track, lossless_resolution, rescale
from musicgen_app.errors import MidiExportError, ProjectError
from musicgen_app.playback.timeline import setup_messages

from .pm_view import pm_view
from .samples import EOT, notes_body, smf, vlq
from .test_midi_roundtrip import run_musicgen

GM_RESET = (0x7E, 0x7F, 0x09, 0x01)
GS_RESET = (0x41, 0x10, 0x42, 0x12, 0x40, 0x00, 0x7F, 0x00, 0x41)
XG_RESET = (0x43, 0x10, 0x4C, 0x00, 0x00, 0x7E, 0x00)
GS_REVERB = (0x41, 0x10, 0x42, 0x12, 0x40, 0x01, 0x30, 0x04, 0x0B)
KEPT_TYPES = frozenset(
    ("text", "copyright", "lyrics", "instrument_name", "cue_marker", "program_name", "device_name", "sysex")
)
UTF8 = "Grüße, 世界".encode().decode("latin-1")  # UTF-8 bytes, as mido holds text (latin-1)


def _track(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """A mido track from (absolute tick, message), sorted by tick (stable: list order within one)."""
    out, last = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        out.append(msg.copy(time=tick - last))
        last = tick
    return out


def _melody(channel: int, pitches: list[int], lyrics: list[str]) -> list[tuple[int, mido.Message]]:
    events: list = []
    for i, pitch in enumerate(pitches):
        t = i * 480
        if i < len(lyrics):
            events.append((t, mido.MetaMessage("lyrics", text=lyrics[i])))
        events.append((t, mido.Message("note_on", channel=channel, note=pitch, velocity=80 + i)))
        events.append((t + 480, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    return events


def karaoke_file() -> mido.MidiFile:
    """A conductor track with copyright, text, a cue, GM and GS resets; a lyrics-only track (as .kar
    files have); a melody with lyrics; a bass track with its own system exclusive."""
    conductor = _track(
        [
            (0, mido.MetaMessage("track_name", name="Karaoke")),
            (0, mido.MetaMessage("copyright", text="© 2026 Åsa Öberg")),  # latin-1 bytes
            (0, mido.Message("sysex", data=GM_RESET)),
            (0, mido.Message("sysex", data=GS_RESET)),
            (0, mido.MetaMessage("set_tempo", tempo=600_000)),
            (0, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
            (0, mido.MetaMessage("text", text=UTF8)),
            (1440, mido.MetaMessage("cue_marker", text="verse 2")),
            (1440, mido.MetaMessage("set_tempo", tempo=500_000)),
            (1920, mido.MetaMessage("device_name", name="Port A")),
        ]
    )
    melody = _track(
        [
            (0, mido.MetaMessage("track_name", name="Melody")),
            (0, mido.MetaMessage("instrument_name", name="Voice")),
            (0, mido.Message("program_change", channel=0, program=52)),
            *_melody(0, [60, 62, 64, 65, 67], ["Hel", "lo ", "wörld", "", "\\la"]),
            # mido has no name for 0x08; it reads it back with the right time only at delta 0
            (960, mido.UnknownMetaMessage(0x08, data=b"Choir")),
        ]
    )
    bass = _track(
        [
            (0, mido.MetaMessage("track_name", name="Bass")),
            (0, mido.Message("sysex", data=XG_RESET)),
            (0, mido.Message("program_change", channel=1, program=33)),
            (0, mido.Message("note_on", channel=1, note=36, velocity=100)),
            (960, mido.Message("sysex", data=GS_REVERB)),
            (960, mido.Message("note_off", channel=1, note=36, velocity=0)),
            (960, mido.Message("note_on", channel=1, note=43, velocity=90)),
            (1920, mido.Message("note_off", channel=1, note=43, velocity=0)),
        ]
    )
    words = _track(
        [
            (0, mido.MetaMessage("track_name", name="Words")),
            (0, mido.MetaMessage("text", text="@KMIDI KARAOKE FILE")),
            (0, mido.MetaMessage("text", text="@THello")),
            (0, mido.MetaMessage("text", text="\\Hel")),
            (480, mido.MetaMessage("text", text="lo")),
        ]
    )
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mf.tracks += [conductor, words, melody, bass]  # the lyrics first, as in most .kar files
    return mf


def meta_view(path: Path) -> list[list[tuple[int, str, bytes]]]:
    """Per MIDI track, as mido reads it: (tick, type, raw bytes) of every kept kind, in file order
    (text as the file's bytes: mido decodes latin-1, one character per byte)."""
    out = []
    for track in mido.MidiFile(path).tracks:
        tick, events = 0, []
        for msg in track:
            tick += msg.time
            if msg.type == "sysex":
                events.append((tick, "sysex", bytes(msg.data)))
            elif msg.type == "unknown_meta" and msg.type_byte == 0x08:
                events.append((tick, "program_name", bytes(msg.data)))
            elif msg.type in KEPT_TYPES:
                text = msg.name if msg.type in ("instrument_name", "device_name") else msg.text
                events.append((tick, msg.type, text.encode("latin-1")))
        out.append(events)
    return out


def channel_view(path: Path) -> list[list[tuple[int, str]]]:
    """Per MIDI track: (tick, message) of every channel message, in file order."""
    out = []
    for track in mido.MidiFile(path).tracks:
        tick, events = 0, []
        for msg in track:
            tick += msg.time
            if not msg.is_meta and msg.type != "sysex":
                events.append((tick, str(msg.copy(time=0))))
        out.append(events)
    return out


@pytest.fixture
def karaoke(tmp_path: Path) -> Path:
    path = tmp_path / "a.mid"
    karaoke_file().save(path)
    return path


def test_import_keeps_every_text_and_sysex_event(karaoke: Path) -> None:
    result = read_midi(karaoke)
    assert result.repairs == [] and result.notices == []
    song = result.song
    assert song.title == "Karaoke"
    assert [(m.tick, m.kind, m.data) for m in song.meta] == [
        (0, "copyright", "© 2026 Åsa Öberg".encode("latin-1")),
        (0, "sysex", bytes(GM_RESET)),
        (0, "sysex", bytes(GS_RESET)),
        (0, "text", "Grüße, 世界".encode()),
        (1440, "cue_marker", b"verse 2"),
        (1920, "device_name", b"Port A"),
    ]
    assert song.meta[3].text == "Grüße, 世界" and song.meta[0].text == "© 2026 Åsa Öberg"
    words, melody, bass = song.tracks
    assert [(m.tick, m.kind, m.text) for m in melody.meta] == [
        (0, "instrument_name", "Voice"),
        (0, "lyrics", "Hel"),
        (480, "lyrics", "lo "),
        (960, "lyrics", "wörld"),
        (960, "program_name", "Choir"),
        (1440, "lyrics", ""),
        (1920, "lyrics", "\\la"),
    ]
    assert (melody.program, len(melody.notes)) == (52, 5)
    assert [(m.tick, m.data) for m in bass.meta] == [(0, bytes(XG_RESET)), (960, bytes(GS_REVERB))]
    assert (bass.program, bass.channel, len(bass.notes)) == (33, 1, 2)
    assert (words.name, words.notes, words.controls) == ("Words", [], [])
    # on a channel no other track uses: the program playback sets for it changes no instrument
    assert (words.channel, words.program) == (15, 0)
    setup = {(m.channel, m.program) for m in setup_messages(song)}
    assert (0, 52) in setup and (1, 33) in setup
    assert [m.text for m in words.meta] == ["@KMIDI KARAOKE FILE", "@THello", "\\Hel", "lo"]


def test_inspect_lists_what_was_kept(karaoke: Path) -> None:
    r = run_musicgen("inspect", str(karaoke))
    assert r.returncode == 0, r.stderr
    assert "conductor track: kept 1 copyright, 2 sysex, 1 text, 1 cue marker, 1 device name" in r.stdout
    assert "Melody: channel 1, program 52" in r.stdout
    assert "; kept: 1 instrument name, 5 lyrics, 1 program name" in r.stdout
    assert "Words: channel 16" in r.stdout and "left out" not in r.stdout
    info = json.loads(run_musicgen("inspect", "--json", str(karaoke)).stdout)
    assert [t["meta"] for t in info["tracks"]] == [
        {"text": 4},
        {"instrument_name": 1, "lyrics": 5, "program_name": 1},
        {"sysex": 2},
    ]


def _assert_same_file(a: Path, b: Path) -> None:
    assert meta_view(b) == meta_view(a)
    assert channel_view(b) == channel_view(a)
    assert pm_view(b) == pm_view(a)


def test_convert_mid_to_mid_keeps_them(karaoke: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.mid"
    r = run_musicgen("convert", str(karaoke), str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    _assert_same_file(karaoke, out)
    assert read_midi(out).song == read_midi(karaoke).song


def test_convert_mid_to_project_to_mid_keeps_them(karaoke: Path, tmp_path: Path) -> None:
    proj, out = tmp_path / "a.mgproj", tmp_path / "b.mid"
    assert run_musicgen("convert", str(karaoke), str(proj)).returncode == 0
    assert load_project(proj).song == read_midi(karaoke).song
    r = run_musicgen("convert", str(proj), str(out))
    assert r.returncode == 0, r.stderr
    _assert_same_file(karaoke, out)


def test_export_order_and_running_status(karaoke: Path, tmp_path: Path) -> None:
    song = read_midi(karaoke).song
    out = tmp_path / "b.mid"
    write_midi(song, out)
    tracks = mido.MidiFile(out).tracks
    # the resets come before the program change of their tick (a GM reset would undo it)
    bass = [m.type for m in tracks[3]]
    assert bass[:4] == ["track_name", "sysex", "program_change", "note_on"]
    # at one tick a lyric comes before the notes: note-off and note-on of the next syllable
    melody = [(m.type, m.time) for m in tracks[2]]
    assert melody[5:9] == [("lyrics", 480), ("note_off", 0), ("note_on", 0), ("lyrics", 480)]
    # a lyrics-only track has no channel message (a program change would change an instrument)
    assert all(m.is_meta for m in tracks[1])
    # sysex and meta events cancel running status; the exported bytes carry a status after them
    body = out.read_bytes()
    reverb = b"\xf0" + vlq(len(GS_REVERB) + 1) + bytes(GS_REVERB) + b"\xf7"
    after = body[body.index(reverb) + len(reverb) :]
    assert after[1] == 0x81  # delta 0, then the note-off's status byte (not running status)
    assert read_midi(out).repairs == []


def test_song_to_mido_matches_midi_bytes(karaoke: Path) -> None:
    song = read_midi(karaoke).song
    buf = io.BytesIO()
    song_to_mido(song).save(file=buf)
    assert buf.getvalue() == midi_bytes(song)


def test_format0_and_second_names_are_kept() -> None:
    mf = mido.MidiFile(type=0, ticks_per_beat=96)
    mf.tracks.append(
        _track(
            [
                (0, mido.MetaMessage("track_name", name="Solo")),
                (0, mido.MetaMessage("copyright", text="public domain")),
                (0, mido.Message("sysex", data=GM_RESET)),
                *_melody(0, [60, 64], ["one", "two"]),
                *_melody(3, [48], []),
                (96, mido.MetaMessage("track_name", name="Part B")),
            ]
        )
    )
    buf = io.BytesIO()
    mf.save(file=buf)
    result = read_midi(buf.getvalue())
    assert result.notices == []
    first, second = result.song.tracks
    # a MIDI track's events go to the first song track made from it (the lowest channel)
    assert [m.kind for m in first.meta] == ["copyright", "sysex", "lyrics", "track_name", "lyrics"]
    assert second.meta == []
    again = read_midi(midi_bytes(result.song))
    assert again.song == result.song and again.notices == []


def test_what_cannot_be_kept_is_still_a_notice() -> None:
    body = (
        b"\x00\xff\x7f\x03\x00\x00\x41"  # sequencer specific
        + b"\x00\xff\x54\x05\x60\x00\x00\x00\x00"  # SMPTE offset
        + b"\x00\xf0\x03\x43\x12\x00"  # first part of a split sysex (no F7)...
        + b"\x00\xf7\x02\x34\xf7"  # ...and its continuation packet
        + b"\x00\xf7\x01\xf8"  # an escaped real-time byte
        + b"\x00\xf0\x03\x7e\x7f\xf7"  # a whole sysex: kept
        + b"\x00\xff\x05\x02la"
        + notes_body((60, 100, 480))
    )
    result = read_midi(smf(body))
    assert result.repairs == []
    assert result.notices == [
        "2 other meta events (port, sequencer data...) were left out",
        "3 system-exclusive packets that are not whole messages (split, or F7 escapes) were left out",
    ]
    assert [(m.kind, m.data) for m in result.song.tracks[0].meta] == [
        ("sysex", b"\x7e\x7f"),
        ("lyrics", b"la"),
    ]


def test_large_tracks_read_tolerantly_keep_them_too() -> None:
    """Tracks over 64 KiB skip mido; running status right after a kept sysex is still repaired."""
    lyric = b"\x00\xff\x05\x03ab\xe9"  # latin-1 bytes, not UTF-8
    notes = notes_body(*[(i % 128, 64, 3) for i in range(MIDO_MAX_TRACK_BYTES // 6)], eot=False)
    body = lyric + b"\x00\xf0\x05\x7e\x7f\x09\x01\xf7" + notes + b"\x00\xf0\x02\x01\xf7" + EOT
    assert len(body) > MIDO_MAX_TRACK_BYTES
    song = read_midi(smf(body)).song
    meta = song.tracks[0].meta
    assert [(m.kind, m.data) for m in meta[:2]] == [("lyrics", b"ab\xe9"), ("sysex", bytes(GM_RESET))]
    assert meta[0].text == "abé" and meta[2].data == b"\x01"
    assert read_midi(midi_bytes(song)).song == song
    rs = smf(b"\x00\x90\x3c\x40\x00\xf0\x03\x7e\x7f\xf7\x60\x3c\x00" + EOT)  # running status after sysex
    result = read_midi(rs)
    assert [(m.kind, m.data) for m in result.song.tracks[0].meta] == [("sysex", b"\x7e\x7f")]
    assert any("lacked its own command" in r for r in result.repairs)


def test_rescale_and_copy_keep_them(karaoke: Path) -> None:
    song = read_midi(karaoke).song
    double = rescale(song, 960)
    assert [m.tick for m in double.tracks[0].meta] == [2 * m.tick for m in song.tracks[0].meta]
    assert [m.tick for m in double.meta] == [2 * m.tick for m in song.meta]
    assert rescale(double, 480) == song
    song.tracks[2].meta.append(MetaEvent(7, "lyrics", b"x"))
    assert lossless_resolution(song, 96) == 480  # tick 7 is not whole at 96
    copy = song.copy()
    assert copy == song
    copy.tracks[2].meta.pop()
    copy.meta.clear()
    assert song.tracks[2].meta[-1].tick == 7 and song.meta
    # equal ticks keep their own order when sorted (a GM reset before a GS reset)
    shuffled = Song(
        meta=[MetaEvent(5, "text", b"b"), MetaEvent(0, "sysex", b"\x7e"), MetaEvent(0, "sysex", b"\x41")]
    )
    shuffled.sort()
    assert [m.data for m in shuffled.meta] == [b"\x7e", b"\x41", b"b"]


def test_project_round_trip_and_format_1_projects(karaoke: Path, tmp_path: Path) -> None:
    song = read_midi(karaoke).song
    song.tracks[0].meta.append(MetaEvent(0, "lyrics", b"\xff\xfe"))  # not UTF-8: stored as hex
    path = tmp_path / "k.mgproj"
    save_project(Project(song), path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format_version"] == FORMAT_VERSION == 3
    assert doc["song"]["meta"][1] == [0, "sysex", "hex", "7e7f0901"]
    assert doc["song"]["meta"][3] == [0, "text", "utf8", "Grüße, 世界"]
    assert doc["song"]["tracks"][0]["meta"][-1] == [0, "lyrics", "hex", "fffe"]
    assert load_project(path).song == song
    # a version-1 project (no meta lists) still loads, with none
    for part in [doc["song"], *doc["song"]["tracks"]]:
        del part["meta"]
    doc["format_version"] = 1
    old = project_from_json(json.dumps(doc)).song
    assert old.meta == [] and all(t.meta == [] for t in old.tracks)
    assert [t.notes for t in old.tracks] == [t.notes for t in song.tracks]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0, "sysex", "hex", "7g"], "not hex data"),
        ([0, "sysex", "hex", "f0"], "above 127"),
        ([0, "marker", "utf8", "x"], "unknown kind"),
        ([0, "text", "base64", "eA=="], "unknown encoding"),
        ([-1, "text", "utf8", "x"], "out of range"),
        ([0, "text", "utf8", 5], "not text"),
        ([0, "text", "utf8"], "rows"),
    ],
)
def test_damaged_meta_in_a_project_is_a_project_error(row: list, message: str) -> None:
    doc = json.loads(project_to_json(Project(Song(tracks=[Track("t")]))))
    doc["song"]["tracks"][0]["meta"] = [row]
    with pytest.raises(ProjectError, match=message):
        project_from_json(json.dumps(doc))


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (MetaEvent(0, "sysex", b"\x7e\x80"), "cannot hold"),
        (MetaEvent(0, "marker", b"x"), "not a kind of MIDI text event"),
        (MetaEvent(-5, "lyrics", b"x"), "before the start"),
    ],
)
def test_export_refuses_meta_events_midi_cannot_hold(event: MetaEvent, message: str) -> None:
    with pytest.raises(MidiExportError, match=message):
        midi_bytes(Song(tracks=[Track("t", notes=[Note(0, 60, 10)], meta=[event])]))
    with pytest.raises(MidiExportError, match=message):
        midi_bytes(Song(meta=[event]))


@pytest.mark.slow
def test_music21_lyrics_survive(tmp_path: Path) -> None:
    """music21 writes a note's lyric as a lyrics meta event at the note's start."""
    from music21 import note, stream

    part = stream.Part()
    for pitch, syllable in [("C4", "Twin"), ("C4", "kle"), ("G4", "Stern"), ("G4", "lein"), ("A4", "grüß")]:
        n = note.Note(pitch, quarterLength=1)
        n.lyric = syllable
        part.append(n)
    score = stream.Score([part])
    src, out = tmp_path / "m21.mid", tmp_path / "out.mid"
    score.write("midi", fp=str(src))
    lyrics = [e for e in meta_view(src)[1] if e[1] == "lyrics"]
    assert [e[2] for e in lyrics][:4] == [b"Twin", b"kle", b"Stern", b"lein"]  # music21 does write them
    result = read_midi(src)
    assert result.notices == []
    assert [m.text for t in result.song.tracks for m in t.meta] == ["Twin", "kle", "Stern", "lein", "grüß"]
    write_midi(result.song, out)
    assert meta_view(out) == meta_view(src)
    assert pm_view(out) == pm_view(src)
