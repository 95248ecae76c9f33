"""Recording from a MIDI keyboard (a virtual port on a private JACK server) into the active
track: notes are drawn while they are played and land in the song as one undo step."""

from __future__ import annotations

import pytest

from musicgen_app.core.song import Song, Track
from musicgen_app.gui.document import Document

from .helpers import record_two_notes

pytestmark = [pytest.mark.gui, pytest.mark.jack, pytest.mark.slow]


def test_record_from_keyboard_draws_and_adds_one_step(window, qtbot, jack_server, recording) -> None:
    import rtmidi

    kb = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "gui-keyboard")
    kb.open_virtual_port("out")
    try:
        window.set_document(Document(Song(tracks=[Track(name="Melody")])))
        window.settings.input_port = "gui-keyboard"
        window.settings.thru = True
        record_two_notes(window, kb, qtbot, (60, 100), (67, 80))
        notes = window.doc.notes
        assert [n.pitch for n in notes] == [60, 67]
        assert [n.velocity for n in notes] == [100, 80]
        assert notes[0].start_tick < notes[0].end_tick <= notes[1].start_tick + 5
        assert window.doc.undo_stack.count() == 1
        assert [m.note for m in recording.of_type("note_on") if m.velocity > 0][:2] == [60, 67]  # thru
        window.act_undo.trigger()
        assert window.doc.notes == []
    finally:
        kb.close_port()
        kb.delete()
