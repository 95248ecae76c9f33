"""Model ▸ Train on My Music… in a real window: a folder of real MIDI files, the shipped melody
model to start from and a short budget; the progress (files read and skipped with their reasons,
batches, validation loss) and the loss curve come in while the window keeps running; the new model
lands in the user models folder, appears in the model box, chosen, and is listed again after a
restart. Cancel mid-training writes no model and the window stays responsive."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from midi_folder_support import SKIPPED, midi_folder
from PySide6.QtCore import Qt, QTimer

from musicgen_app.core import paths
from musicgen_app.gui import train_dialog
from musicgen_app.gui.main_window import MainWindow, list_model_infos
from musicgen_app.playback.outputs import RecordingOutput

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the training process inherits the environment: its dataset cache stays in the test's folder
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", str(tmp_path / "cache"))
    if not (paths.models_dir() / "melody-lstm.safetensors").exists():
        pytest.skip("no shipped melody model")


class Heartbeat:
    """A 20 ms UI timer: the longest gap between its ticks is how long the UI thread was held."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.longest = 0.0
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now


def _open(window, qtbot) -> train_dialog.TrainDialog:
    qtbot.waitUntil(lambda: window.panel.model_combo.count() > 0, timeout=20_000)
    window.act_train.trigger()  # Model ▸ Train on My Music…
    dlg = window.findChild(train_dialog.TrainDialog)
    assert dlg is not None and dlg.isVisible()
    assert dlg.base_combo.findData("melody-lstm") == 0  # the default: the melody models first
    # every family fine-tunes: a model is offered with its family, which the command trains
    i = dlg.base_combo.findData("note-transformer")
    assert i > 0 and dlg.base_combo.itemData(i, train_dialog.FAMILY_ROLE) == "note-transformer"
    return dlg


def _installed(name: str) -> list[str]:
    return sorted(p.name for p in paths.user_models_dir().glob(f"{name}*"))


def test_train_on_my_music_adds_the_model_to_the_box(window, qtbot, tmp_path: Path) -> None:
    folder = midi_folder(tmp_path / "my songs", n=12)
    dlg = _open(window, qtbot)
    dlg.set_inputs(str(folder), "melody-lstm", minutes=0.05)
    assert dlg.name_edit.text() == "my-songs-tuned"  # suggested from the folder's name
    beat = Heartbeat()
    seen: list[str] = []
    dlg.job.progress.connect(lambda ev: seen.append(ev["event"]))
    dlg.start()
    assert dlg.job.running() and not dlg.train_button.isEnabled()
    qtbot.waitUntil(lambda: window.panel.model_name() == "my-songs-tuned", timeout=120_000)
    beat.timer.stop()
    assert {"reading", "dataset", "start", "step", "validating", "epoch", "done"} <= set(seen)
    assert dlg.curve.train and dlg.curve.val  # the curve was drawn from the run's figures
    skipped = dlg.skipped.toPlainText()
    for name in SKIPPED:
        assert name in skipped
    assert "drums only" in skipped and "empty" in skipped and "not a MIDI file" in skipped
    assert "Done" in dlg.status.text() and dlg.train_button.isEnabled()
    assert beat.longest < 1.0, f"the UI thread was held {beat.longest:.2f} s"
    assert _installed("my-songs-tuned") == [
        "my-songs-tuned-curve.png",
        "my-songs-tuned.json",
        "my-songs-tuned.safetensors",
    ]
    assert not any((paths.user_models_dir() / train_dialog.STAGING).iterdir())
    info = window.panel.model_info("my-songs-tuned")
    assert info.card["base_model"]["name"] == "melody-lstm"
    qtbot.waitUntil(lambda: window.gen.models.get("my-songs-tuned") is not None, timeout=20_000)
    # the same name is not taken twice
    dlg.name_edit.setText("my-songs-tuned")
    dlg.start()
    assert not dlg.job.running() and "already a model named" in dlg.status.text()
    # a restart: a new window with the settings the first one saved offers it again, chosen
    window.shutdown()
    again = MainWindow(output=RecordingOutput(), settings=window.settings, open_output=False)
    qtbot.addWidget(again)
    try:
        qtbot.waitUntil(lambda: again.panel.model_name() == "my-songs-tuned", timeout=20_000)
    finally:
        again.shutdown()


def test_train_on_my_music_fine_tunes_a_model_of_another_family(window, qtbot, tmp_path: Path) -> None:
    """The chord LSTM chosen as the start: the run trains its family (`train chord-lstm --from`)."""
    if not (paths.models_dir() / "chord-lstm.safetensors").exists():
        pytest.skip("no shipped chord-lstm model")
    folder = midi_folder(tmp_path / "chord songs", n=12)
    dlg = _open(window, qtbot)
    dlg.set_inputs(str(folder), "chord-lstm", minutes=0.05, name="chords-tuned")
    dlg.start()
    qtbot.waitUntil(lambda: window.panel.model_name() == "chords-tuned", timeout=120_000)
    card = window.panel.model_info("chords-tuned").card
    assert card["family"] == "chord-lstm" and card["base_model"]["name"] == "chord-lstm"
    # the shipped chord-lstm is an ensemble: every member is fine-tuned, the mixture kept
    assert card["ensemble"]["members"] == 2 and card["ensemble"]["weights"] == [0.55, 0.45]
    assert dlg.curve.unit == "nats/token" and dlg.curve.val


def _training_under_way(window, qtbot, tmp_path: Path, name: str) -> train_dialog.TrainDialog:
    """A 10-minute run on a small folder, once its first batches are in."""
    folder = midi_folder(tmp_path / "songs", n=12, length=64)
    dlg = _open(window, qtbot)
    dlg.set_inputs(str(folder), "melody-lstm", minutes=10, name=name)
    dlg.start()
    qtbot.waitUntil(lambda: len(dlg.curve.train) >= 2, timeout=120_000)
    return dlg


def test_cancel_mid_training_writes_no_model_and_the_window_stays_responsive(
    window, qtbot, tmp_path: Path
) -> None:
    beat = Heartbeat()
    dlg = _training_under_way(window, qtbot, tmp_path, "never")
    staging = list((paths.user_models_dir() / train_dialog.STAGING).iterdir())
    assert len(staging) == 1
    assert dlg.cancel_button.isVisible() and not dlg.close_button.isVisible()
    t0 = time.perf_counter()
    qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dlg.job.running() and dlg.train_button.isEnabled(), timeout=10_000)
    stopped_s = time.perf_counter() - t0
    beat.timer.stop()
    assert "Cancelled" in dlg.status.text()
    assert stopped_s < 5.0, f"cancel took {stopped_s:.1f} s"
    assert beat.longest < 1.0, f"the UI thread was held {beat.longest:.2f} s"
    assert not staging[0].exists()
    assert _installed("never") == []
    assert window.panel.model_combo.findData("never") < 0
    assert "never" not in [i.name for i in list_model_infos()]


def test_closing_the_window_mid_training_kills_the_run_and_leaves_nothing(
    window, qtbot, tmp_path: Path
) -> None:
    dlg = _training_under_way(window, qtbot, tmp_path, "closing")
    proc = dlg.job._proc
    assert proc is not None
    pid = proc.processId()
    window.shutdown()
    assert not train_dialog._alive(pid) or _zombie(pid)
    assert not any((paths.user_models_dir() / train_dialog.STAGING).iterdir())
    assert _installed("closing") == []


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False


def test_a_failing_run_is_one_line_and_leaves_nothing(window, qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "nothing here"
    folder.mkdir()
    (folder / "a.mid").write_text("not MIDI at all\n")
    dlg = _open(window, qtbot)
    dlg.set_inputs(str(folder), "melody-lstm", minutes=1, name="broken")
    dlg.start()
    qtbot.waitUntil(lambda: not dlg.job.running() and dlg.train_button.isEnabled(), timeout=60_000)
    text = dlg.status.text()
    assert text.startswith("Training failed: none of the 1 files") and "\n" not in text
    assert "Traceback" not in window.statusBar().currentMessage()
    assert _installed("broken") == []
