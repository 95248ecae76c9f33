"""Repair messages speak to a musician: where (track and bar), in words (no status bytes or chunk
names; those go to the debug log), with correct singular and plural; a MIDI 2.0 file is named."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import read_midi
from musicgen_app.errors import MidiImportError

from .malformed import CASES
from .samples import EOT, TEMPO_120, notes_body, smf, vlq

BAR = 4 * 480  # 4/4 at 480 ticks per quarter


def _unended(n: int) -> bytes:
    """A track with ``n`` notes whose note-offs are missing (the first at bar 3)."""
    body = vlq(2 * BAR) + bytes([0x90, 60, 90])
    for i in range(1, n):
        body += b"\x00" + bytes([0x90, 60 + i, 90])
    return body + vlq(BAR) + b"\xff\x2f\x00"


def test_singular_and_plural_with_the_first_place() -> None:
    one = read_midi(smf(TEMPO_120 + EOT, _unended(1))).repairs
    assert one == ["1 note had no end and was stopped at the end of its track (track 2, bar 3)"]
    three = read_midi(smf(TEMPO_120 + EOT, _unended(3))).repairs
    assert three == [
        "3 notes had no end and were stopped at the end of their tracks (the first in track 2, bar 3)"
    ]


def test_a_damaged_byte_is_placed_by_track_and_bar(caplog: pytest.LogCaptureFixture) -> None:
    # 13 bars of whole notes, then an undefined status byte at the start of bar 14 in track 2
    body = notes_body(*[(60, 90, BAR)] * 13, eot=False) + b"\x00\xf4" + notes_body((62, 90, 480))
    with caplog.at_level(logging.DEBUG, logger="musicgen_app.core.midi_io"):
        result = read_midi(smf(TEMPO_120 + EOT, body))
    assert result.repairs == ["1 unknown command byte was skipped (track 2, bar 14)"]
    assert len(result.song.tracks[0].notes) == 14
    # the technical detail is in the debug log (what `musicgen --verbose` shows)
    assert "undefined status byte 0xF4" in caplog.text and "tick 24960" in caplog.text


_TECHNICAL = re.compile(
    r"0x[0-9A-Fa-f]|status byte|chunk|MThd|MTrk|note-off|note-on|end-of-track|running status"
)


@pytest.mark.parametrize(
    ("name", "data"),
    [(c[0], c[1]) for c in CASES if c[2] == "repair"],
    ids=[c[0] for c in CASES if c[2] == "repair"],
)
def test_repairs_use_no_technical_words_and_agree_in_number(name: str, data: bytes) -> None:
    for line in read_midi(data).repairs:
        assert not _TECHNICAL.search(line), (name, line)
        if re.match(r"1 ", line):
            assert " were " not in line.split(" (")[0], (name, line)
        elif re.match(r"[\d,]+ ", line):
            assert " was " not in line.split(" (")[0], (name, line)
        assert not re.search(
            r"(?<![\d,])1 (\w+ )?(bytes|tracks|notes|events|values|blocks|changes)\b", line
        ), (name, line)


@pytest.mark.parametrize(
    ("head", "word"), [(b"SMF2CLIP", "a MIDI 2.0 clip file"), (b"SMF2CON1", "a MIDI 2.0 container file")]
)
def test_a_midi2_file_is_named(
    head: bytes, word: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = head + b"\x00" * 8 + bytes(range(256))  # a header and binary UMP data
    with pytest.raises(MidiImportError, match=f"this is {word}, which musicgen cannot read yet"):
        read_midi(data)
    path = tmp_path / "clip.midi2"
    path.write_bytes(data)
    assert main(["convert", str(path), str(tmp_path / "out.mid")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MIDI 2.0" in err and "text file" not in err
