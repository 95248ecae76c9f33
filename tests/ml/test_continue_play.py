"""`musicgen continue --play` streams the take to a real JACK MIDI port while it is generated, and the
file it writes holds exactly what was heard. Uses the tests' private JACK server and
receiver (a child process timestamping what arrives at ``receiver:in``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import read_midi, write_midi
from musicgen_app.core.song import Note, Song, TempoChange, Track

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def test_continue_play_streams_to_a_jack_port(jack_receiver, tmp_path: Path, capsys) -> None:
    seed = tmp_path / "seed.mid"
    notes = [Note(i * 240, p, i * 240 + 220, 90) for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62])]
    write_midi(Song(tracks=[Track(notes=notes)], tempos=[TempoChange(0, 250_000)]), seed)  # 240 BPM
    out = tmp_path / "out.mid"
    code = main(["continue", str(seed), "-o", str(out), "--bars", "2", "--seed", "4", "--play",
                 "--device", jack_receiver.port, "--midi-api", "jack"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    written = read_midi(out).song.tracks[0].notes[len(notes) :]
    assert len(written) >= 2
    heard = [pitch for _, kind, _, pitch in jack_receiver.note_events() if kind == "on"]
    assert heard == [n.pitch for n in written]
    ons = [e for e in jack_receiver.note_events() if e[1] == "on"]
    offs = [e for e in jack_receiver.note_events() if e[1] == "off"]
    assert len(offs) >= len(ons)  # nothing left hanging
