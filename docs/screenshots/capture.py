"""Regenerate the README screenshots: ``.venv/bin/python docs/screenshots/capture.py``.

Runs the real window (offscreen by default; set QT_QPA_PLATFORM=xcb under Xvfb to capture a real
X server), continues a sketch with the first shipped model and grabs the window while the take
streams in, then takes, several tracks, an accompaniment with its chord lane, and a 10,000-note
song zoomed out.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MUSICGEN_DATA_DIR", tempfile.mkdtemp())
os.environ.setdefault("MUSICGEN_CONFIG_DIR", tempfile.mkdtemp())
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402

from musicgen_app.core.autosave import AutosaveStore  # noqa: E402
from musicgen_app.core.song import Note, Song, Track  # noqa: E402
from musicgen_app.gui.document import Document  # noqa: E402
from musicgen_app.gui.main_window import MainWindow  # noqa: E402
from musicgen_app.gui.settings import AppSettings  # noqa: E402
from musicgen_app.playback.outputs import RecordingOutput  # noqa: E402

OUT = Path(__file__).resolve().parent


def spin(app: QApplication, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        app.processEvents()
        time.sleep(0.005)


def sketch() -> Song:
    """Four bars of a folk-like tune in D major (quarters and eighths)."""
    line = [
        (62, 1), (66, 0.5), (69, 0.5), (74, 1), (73, 0.5), (71, 0.5),
        (69, 1), (66, 1), (67, 0.5), (69, 0.5), (71, 1),
        (69, 0.5), (67, 0.5), (66, 1), (64, 1), (62, 0.5), (64, 0.5),
        (66, 1.5), (64, 0.5), (62, 2),
    ]  # fmt: skip
    notes, t = [], 0
    for pitch, beats in line:
        d = int(beats * 480)
        notes.append(Note(t, pitch, t + d - 20, 96))
        t += d
    return Song(tracks=[Track(name="Melody", notes=notes)], title="sketch")


def main() -> int:
    app = QApplication.instance() or QApplication([])
    win = MainWindow(
        output=RecordingOutput(),
        settings=AppSettings(),
        autosave_store=AutosaveStore(tempfile.mkdtemp()),
        open_output=False,
    )
    win.resize(1280, 720)
    win.show()
    spin(app, 20, lambda: win.panel.model_combo.count() > 0)
    win.set_document(Document(sketch()))
    win.panel.bars.setValue(4)
    win.panel.random_seed.setChecked(False)
    win.panel.seed.setValue(7)
    win.panel.temperature.setValue(90)
    g = win.roll.geometry_model
    g.show_ticks(0, 8 * 1920 * 1.02)
    g.key_height = 13
    g.center_pitch(68)
    win.roll._sync()
    win.gen.models.get(win.panel.model_name())
    win.act_continue.trigger()
    # Grab while the take streams in: about half of it revealed behind the playhead.
    spin(app, 60, lambda: win.canvas.playhead_tick >= 4 * 1920 + 1.6 * 1920)
    g.show_ticks(0, 8 * 1920 * 1.02)
    win.roll._sync()
    spin(app, 0.1)
    win.grab().save(str(OUT / "continue.png"))
    spin(app, 60, lambda: not win.gen.running and not win.playback.playing)
    win.stop_all()

    # Three variations to audition, the second one shown.
    win.panel.variations.setValue(3)
    win.act_continue.trigger()
    spin(app, 60, lambda: len(win.gen.takes) == 3 and not win.gen.running)
    win.stop_all()
    win.panel.takes.setCurrentRow(1)  # auditions take 2 from a bar before it
    win.doc.set_selection(win.doc.notes[4:8])
    win.act_follow.setChecked(False)
    win._toggle_follow()
    g.show_ticks(0, 9 * 1920 * 1.02)
    win.roll._sync()
    spin(app, 3.0)
    win.grab().save(str(OUT / "takes.png"))
    win.act_accept.trigger()

    # Several tracks: a Bach chorale from music21's corpus, the soprano active and continued.
    import music21

    chorale = Path(tempfile.mkdtemp()) / "bwv66.6.mid"
    music21.corpus.parse("bach/bwv66.6").write("midi", fp=str(chorale))
    win.open_path(chorale)
    spin(app, 20, lambda: win.doc.song.note_count > 100)
    win.track_combo.setCurrentIndex(0)
    win.panel.variations.setValue(1)
    win.panel.bars.setValue(2)
    win.act_continue.trigger()
    spin(app, 60, lambda: not win.gen.running and not win.playback.playing)
    win.stop_all()
    song = win.doc.song
    g.show_ticks(song.end_tick - 6 * song.ticks_per_bar(), song.end_tick + 2.2 * song.ticks_per_bar())
    g.key_height = 11
    g.center_pitch(60)
    win.roll._sync()
    spin(app, 0.2)
    win.grab().save(str(OUT / "tracks.png"))
    win.act_reject.trigger()

    # Accompany: the sketch gets a piano accompaniment; accepting it fills the chord lane.
    win.set_document(Document(sketch()))
    win.accompany_style_actions["piano"].trigger()
    win.act_accompany.trigger()
    spin(app, 90, lambda: not win.gen.running and win.gen.current_take() is not None)
    win.stop_all()
    win.act_accept.trigger()
    g.show_ticks(0, 4 * 1920 * 1.02)
    g.key_height = 9
    g.center_pitch(60)
    win.roll._sync()
    spin(app, 0.3)
    win.grab().save(str(OUT / "accompany.png"))

    # Level of detail: 10,000 notes zoomed out.
    rng = random.Random(3)
    notes, t = [], 0
    for _ in range(10_000):
        d = rng.choice([240, 480, 960])
        notes.append(Note(t, rng.randint(57, 81), t + d, rng.randint(50, 120)))
        t += d
    win.set_document(Document(Song(tracks=[Track(name="10,000 notes", notes=notes)])))
    win.roll.fit_song()
    spin(app, 0.2)
    win.grab().save(str(OUT / "zoomed_out.png"))
    win.shutdown()
    print("wrote", ", ".join(p.name for p in sorted(OUT.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
