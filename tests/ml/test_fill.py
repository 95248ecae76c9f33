"""Fill (ml/fill.py, `musicgen fill`): the range is replaced, everything outside it is written back
byte for byte, the join follows the music on both sides, the same seed gives the same file, and
the fill streams as a session. Real shipped model, real MIDI files (POP909 when it is beside the
project), real exported bytes."""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.midi_io import midi_bytes, read_midi, write_midi
from musicgen_app.core.song import ControlEvent, MetaEvent, Note, Song, TempoChange, TimeSignature, Track
from musicgen_app.errors import GenerationError
from musicgen_app.ml.fill import bars_to_range, fill_song, split_at_range, start_fill_session
from musicgen_app.ml.judge import max_simultaneous
from musicgen_app.ml.registry import load_model
from musicgen_app.ml.sampling import SamplingConfig

POP909 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pop909"
BAR = 4 * 480


@pytest.fixture(scope="module")
def model():
    return load_model("melody-lstm")


def _chunks(data: bytes) -> list[bytes]:
    """The chunks of a MIDI file (header first), each with its id and length."""
    out, pos = [], 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        out.append(data[pos : pos + 8 + size])
        pos += 8 + size
    return out


def _vlq(body: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        b = body[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos


def _events(chunk: bytes) -> list[tuple[int, int, bytes]]:
    """``(absolute tick, byte offset of its delta time in the chunk, event bytes with its status)``
    of every event of a track chunk."""
    body, pos, tick, running, out = chunk, 8, 0, 0, []
    while pos < len(body):
        first = pos
        delta, pos = _vlq(body, pos)
        tick += delta
        at = pos
        status = body[pos]
        if status == 0xFF:
            length, p = _vlq(body, pos + 2)
            pos = p + length
            out.append((tick, first, bytes(body[at:pos])))
            running = 0
            continue
        if status in (0xF0, 0xF7):
            length, p = _vlq(body, pos + 1)
            pos = p + length
            out.append((tick, first, bytes(body[at:pos])))
            running = 0
            continue
        if status & 0x80:
            running = status
            pos += 1
        n = 1 if running & 0xF0 in (0xC0, 0xD0) else 2
        out.append((tick, first, bytes([running, *body[pos : pos + n]])))
        pos += n
    return out


def assert_outside_unchanged(
    before: bytes, after: bytes, track: int, start: int, end: int, range_notes
) -> None:
    """The exported files agree byte for byte outside ``[start, end)`` of ``track``: the header and
    every other chunk identical; the track's chunk identical up to its first event at or after
    ``start``; from ``end`` on the same events at the same ticks, but for the note-offs of the
    range's own notes (old and new), which end at or after ``end``."""
    a, b = _chunks(before), _chunks(after)
    assert len(a) == len(b)
    k = track + 2  # chunk 0 is the header, chunk 1 the conductor track
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if i != k:
            assert x == y, f"chunk {i} changed"
    ea, eb = _events(a[k]), _events(b[k])
    cut_a = next((off for t, off, _ in ea if t >= start), len(a[k]))
    cut_b = next((off for t, off, _ in eb if t >= start), len(b[k]))
    assert cut_a == cut_b and a[k][8:cut_a] == b[k][8:cut_b], "bytes before the range changed"
    offs = {(n.end_tick, n.channel, n.pitch) for n in range_notes}

    def later(events):
        return [
            (t, ev)
            for t, _, ev in events
            if t >= end and not (ev[0] & 0xF0 == 0x80 and (t, ev[0] & 0x0F, ev[1]) in offs)
        ]

    assert later(ea) == later(eb), "events after the range changed"


def band_song() -> Song:
    """A 10-bar C major song: a melody (one note sounds into bar 5, one out of bar 6), a bass with
    a pedal, drums, a lyric; bars 5-6 are the range of the tests."""
    line = [60, 62, 64, 65, 67, 69, 67, 65, 64, 62, 60, 64, 67, 72, 71, 69]
    melody = [Note(i * 480, line[i % 16], i * 480 + 440, 90) for i in range(40) if i not in (15, 23, 24)]
    melody.append(Note(15 * 480, 65, 16 * 480 + 240, 88))  # tied into bar 5 (which starts at 16 * 480)
    melody.append(Note(23 * 480, 71, 24 * 480 + 240, 88))  # starts in bar 6, sounds into bar 7
    bass = [Note(b * BAR, 36 + (b % 4) * 5, b * BAR + BAR - 10, 80, 1) for b in range(10)]
    drums = [Note(i * 480, 36 if i % 2 == 0 else 38, i * 480 + 100, 100, 9) for i in range(40)]
    return Song(
        tracks=[
            Track(name="Melody", notes=sorted(melody), meta=[MetaEvent.from_text(4 * 480, "lyrics", "la")]),
            Track(
                name="Bass",
                program=33,
                channel=1,
                notes=bass,
                controls=[ControlEvent(t, "control_change", 64, v, 1) for t, v in ((0, 127), (9 * 480, 0))],
            ),
            Track(name="Drums", channel=9, is_drum=True, notes=drums),
        ],
        time_signatures=[TimeSignature(0, 4, 4)],
    )


def test_bars_are_counted_from_one_and_a_range_past_the_end_is_refused() -> None:
    song = band_song()
    assert bars_to_range(song, 5, 6) == (4 * BAR, 6 * BAR)
    assert bars_to_range(song, 10, 10) == (9 * BAR, 10 * BAR)
    with pytest.raises(GenerationError, match="past the end"):
        bars_to_range(song, 10, 11)
    with pytest.raises(GenerationError, match="not a range"):
        bars_to_range(song, 3, 2)


@pytest.mark.parametrize("track", [0, 1])
def test_the_range_is_replaced_and_everything_outside_it_is_byte_identical(model, track: int) -> None:
    song = band_song()
    start, end = bars_to_range(song, 5, 6)
    filled, session = fill_song(model, song, track, start, end, sampling=SamplingConfig(seed=7))
    old_before, old_inside, old_after = split_at_range(song.tracks[track].notes, start, end)
    new_before, new_inside, new_after = split_at_range(filled.tracks[track].notes, start, end)
    # replaced, not laid over: no old note of the range is left, the new ones stay inside it
    assert old_inside and new_inside
    assert not set(old_inside) & set(new_inside)
    assert all(start <= n.start_tick and n.end_tick <= end for n in new_inside)
    assert new_before == old_before and new_after == old_after  # the notes outside, whole
    assert max_simultaneous(new_inside) == 1  # one line, as a melody model writes
    # a note sounding into the range is tied in on purpose: the fill starts when it ends
    tied = [n for n in old_before if n.end_tick > start]
    assert all(n.start_tick >= max(t.end_tick for t in tied) for n in new_inside) if tied else True
    assert_outside_unchanged(
        midi_bytes(song), midi_bytes(filled), track, start, end, [*old_inside, *new_inside]
    )
    assert filled.tracks[2] == song.tracks[2] and filled.tracks[1 - track] == song.tracks[1 - track]
    assert session.best is not None and len(session.candidates) == 8


def test_the_checker_sees_a_change_outside_the_range(model) -> None:
    """The byte comparison can fail: a note moved one tick before the range is caught."""
    song = band_song()
    start, end = bars_to_range(song, 5, 6)
    filled, _ = fill_song(model, song, 0, start, end, sampling=SamplingConfig(seed=7))
    _, inside, _ = split_at_range(filled.tracks[0].notes, start, end)
    moved = filled.copy()
    first = moved.tracks[0].notes[0]
    moved.tracks[0].notes[0] = first.moved(1)
    with pytest.raises(AssertionError):
        assert_outside_unchanged(midi_bytes(song), midi_bytes(moved), 0, start, end, inside)
    late = filled.copy()
    late.tracks[0].notes[-1] = late.tracks[0].notes[-1].moved(0, 1)
    with pytest.raises(AssertionError):
        assert_outside_unchanged(midi_bytes(song), midi_bytes(late), 0, start, end, inside)


def test_edges_cut_shortens_the_note_sounding_into_the_range(model) -> None:
    song = band_song()
    start, end = bars_to_range(song, 5, 6)
    filled, session = fill_song(model, song, 0, start, end, edges="cut", sampling=SamplingConfig(seed=7))
    cut = [n for n in filled.tracks[0].notes if n.start_tick == 15 * 480]
    assert cut == [Note(15 * 480, 65, start, 88)]
    assert session.plan.held_steps == 0


def test_the_same_seed_gives_the_same_file_and_another_seed_another_fill(model, tmp_path: Path) -> None:
    song = band_song()
    start, end = bars_to_range(song, 5, 6)
    takes = [fill_song(model, song, 0, start, end, sampling=SamplingConfig(seed=s))[0] for s in (3, 3, 4)]
    assert midi_bytes(takes[0]) == midi_bytes(takes[1])
    assert midi_bytes(takes[0]) != midi_bytes(takes[2])


def test_the_fill_streams_as_a_session_and_cancels(model) -> None:
    song = band_song()
    start, end = bars_to_range(song, 5, 6)
    session = start_fill_session(model, song, 0, start, end, sampling=SamplingConfig(seed=1))
    events = list(session)
    assert isinstance(events[-1], SessionFinished) and events[-1].reason == "done"
    notes = [e for e in events if isinstance(e, NoteEvent)]
    assert [e.seq for e in notes] == list(range(len(notes))) and notes
    assert all(e.session_id == session.id for e in notes)
    # cancelled from another thread while the candidates are sampled: no note comes out
    session = start_fill_session(model, song, 0, start, end, sampling=SamplingConfig(seed=1), candidates=64)
    timer = threading.Timer(0.005, session.cancel)
    timer.start()
    events = list(session)
    timer.join()
    assert events[-1].reason == "cancelled"
    assert not [e for e in events if isinstance(e, NoteEvent)]


@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 is not beside the project")
def test_the_join_keeps_the_key_register_and_density_of_held_out_pop909_songs(model) -> None:
    """Two bars in the middle of the MELODY track of held-out POP909 songs (multi-track files):
    the file outside the range unchanged; the fill in the neighbours' key and register, about as
    dense, with no wild leap across its edges."""
    from musicgen_app.ml.fill_eval import held_out_cases, join_stats, summarize

    rows = []
    for case in held_out_cases(6, POP909):
        song, track, start, end = case.song, case.track, case.start_tick, case.end_tick
        filled, _ = fill_song(model, song, track, start, end, sampling=SamplingConfig(seed=11))
        old = split_at_range(song.tracks[track].notes, start, end)[1]
        new = split_at_range(filled.tracks[track].notes, start, end)[1]
        assert_outside_unchanged(midi_bytes(song), midi_bytes(filled), track, start, end, [*old, *new])
        rows.append(join_stats(case, new))
    fig = summarize(rows)
    assert fig["cases"] == 6 and fig["silent"] == 0, fig
    assert fig["in_key"] >= 0.85, fig
    assert fig["outside_register"] <= 0.1, fig
    assert 0.5 <= fig["density_ratio"] <= 2.0, fig
    assert fig["edge_interval"] <= 7, fig


def test_musicgen_fill_writes_the_song_with_the_range_replaced(tmp_path: Path, capsys) -> None:
    song = band_song()
    src, out = tmp_path / "song.mid", tmp_path / "out.mid"
    write_midi(song, src)
    code = main(["fill", str(src), "--bars", "5-6", "--track", "1", "-o", str(out), "--seed", "5"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "track 1" in text and out.exists()
    start, end = 4 * BAR, 6 * BAR
    old = split_at_range(read_midi(src).song.tracks[0].notes, start, end)[1]
    new = split_at_range(read_midi(out).song.tracks[0].notes, start, end)[1]
    assert_outside_unchanged(src.read_bytes(), out.read_bytes(), 0, start, end, [*old, *new])
    # --ticks: any range; the default track is the one named as the melody
    code = main(["fill", str(src), "--ticks", f"{start + 240}-{end - 240}", "-o", str(out), "--seed", "5"])
    assert code == 0, capsys.readouterr().err
    new = split_at_range(read_midi(out).song.tracks[0].notes, start + 240, end - 240)[1]
    assert new and all(start + 240 <= n.start_tick and n.end_tick <= end - 240 for n in new)


@pytest.mark.jack
@pytest.mark.slow
def test_musicgen_fill_play_streams_the_fill_over_the_song_to_a_jack_port(
    jack_receiver, tmp_path: Path, capsys
) -> None:
    """`--play`: the fill is heard on a real JACK port with the song from a bar before the range to
    a bar after it (the range's old notes not), and the file holds exactly what was heard."""
    song = band_song()
    song.tempos = [TempoChange(0, 250_000)]  # 240 BPM: two bars in two seconds
    src, out = tmp_path / "song.mid", tmp_path / "out.mid"
    write_midi(song, src)
    code = main(["fill", str(src), "--bars", "5-6", "-o", str(out), "--seed", "5", "--play",
                 "--device", jack_receiver.port, "--midi-api", "jack"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    start, end = 4 * BAR, 6 * BAR
    new = split_at_range(read_midi(out).song.tracks[0].notes, start, end)[1]
    old = split_at_range(song.tracks[0].notes, start, end)[1]
    written = [n for n in read_midi(out).song.tracks[0].notes if start - BAR <= n.start_tick < end + BAR]
    events = jack_receiver.note_events()
    heard = [pitch for _, kind, ch, pitch in events if kind == "on" and ch == 0]
    assert heard == [n.pitch for n in written]  # the bar before, the fill, the bar after
    assert new and new != old
    assert len([p for _, kind, ch, p in events if kind == "on" and ch == 1]) == 4  # the bass plays along
    ons = [e for e in events if e[1] == "on"]
    offs = [e for e in events if e[1] == "off"]
    assert len(offs) >= len(ons)  # nothing left hanging
