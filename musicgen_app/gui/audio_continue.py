"""Continue ▸ Continue as Audio: the raw-audio WaveNet (paper 004) continues the sketch as sound.

The work is :func:`continue_as_audio_job`, a plain function the window runs on a task thread: it
renders the sketch on piano (FluidSynth, the chosen SoundFont) at the model's rate, feeds its end
to the model and generates block by block (:meth:`AudioWaveNetModel.stream_audio`), appending each
block to a JACK audio output (:class:`~musicgen_app.playback.audio_out.JackAudioOutput`).
Playback starts as soon as the rest can be generated before the output catches up: with a
real-time factor ``r`` (generation time / audio time, measured as it goes) the output waits for
``T * (1 - 1/r)`` of the ``T`` seconds, so faster than real time (``r < 1``) it streams after a
short prebuffer, and slower it shows progress and starts playing part-way. The generated audio
is written as a take (a WAV in the cache) that File ▸ Save Audio Take… copies where the user
wants; with no audio output it is kept all the same and the user gets one line.

The UI thread only starts the task, shows the state the task writes (a timer reads it), and
cancels: triggering the action again, Stop, a new document or closing the window set an event
the generator looks at before every block (50 ms of audio), and the output falls silent at once.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from musicgen_app.core import paths
from musicgen_app.core.song import Song
from musicgen_app.errors import DeviceError, GenerationError

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

MODEL = "audio-wavenet"
DEFAULT_SECONDS = 4.0
PREBUFFER_S = 0.3  # audio held before playing even when generation is faster than real time
MARGIN = 1.15  # safety factor on the measured generation speed
PROGRESS_MS = 200


@dataclass
class AudioJobState:
    """What the task thread is doing (written by it, read by the UI's timer; plain attributes)."""

    phase: str = "loading"  # loading, rendering, generating, playing
    total_s: float = 0.0
    generated_s: float = 0.0
    played_s: float = 0.0
    playing: bool = False


@dataclass
class AudioTake:
    """A finished audio continuation."""

    path: Path
    seconds: float
    sample_rate: int
    real_time_factor: float
    output: str  # the port and where it is connected, or why nothing sounded (one line)
    played_s: float  # seconds the output played
    started_after_s: float | None  # generated seconds when playback began (None: not played)
    stopped: bool = False  # cancelled while playing (the take is complete all the same)


def take_path(stem: str = "take") -> Path:
    """A new file for an audio take in the cache (``audio-takes/STEM-YYYYmmdd-HHMMSS-ms.wav``)."""
    folder = paths.cache_dir() / "audio-takes"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return folder / f"{stem}-{stamp}.wav"


def start_point(total_s: float, rtf: float) -> float:
    """Seconds of audio to generate before playing, so that playback of ``total_s`` seconds never
    catches up with generation running at real-time factor ``rtf`` (with a margin)."""
    need = total_s * (1.0 - 1.0 / (rtf * MARGIN)) if rtf * MARGIN > 1.0 else 0.0
    return min(total_s, need + PREBUFFER_S)


def continue_as_audio_job(
    song: Song,
    *,
    load_model: Callable[[str], Any],
    seconds: float,
    path: Path | Callable[[], Path],
    cancel: threading.Event,
    state: AudioJobState,
    open_output: Callable[[], Any] | None = None,
    soundfont: str | None = None,
    temperature: float = 1.0,
    seed: int = 0,
) -> AudioTake:
    """Render ``song``, continue it ``seconds`` as audio, play it while it is made, write the take
    to ``path`` (or the path ``path()`` makes; task thread; see the module docstring).
    GenerationError when cancelled before the take was complete."""
    from musicgen_app.ml.audio import raw_wavenet as rw
    from musicgen_app.playback.audio_out import JackAudioOutput
    from musicgen_app.playback.render import render_song, write_wav

    state.phase = "loading"
    model = rw.as_audio_wavenet(load_model(MODEL), MODEL)
    cfg, sr = model.network.cfg, model.sample_rate
    if cancel.is_set():
        raise GenerationError("the continuation was cancelled")
    state.phase = "rendering"
    audio, roll, hold = rw.sketch_seed(
        song, cfg, lambda s, rate: render_song(s, soundfont=soundfont or None, sample_rate=rate, tail_s=0.0)
    )
    n = max(1, round(seconds * sr))
    state.total_s = n / sr
    try:
        out = (open_output or JackAudioOutput.acquire)()
        where = f"{out.port_name} -> {', '.join(out.connected) or 'no playback port'}"
    except DeviceError as exc:
        out, where = None, str(exc)
    parts: list[Any] = []
    started_after: float | None = None
    try:
        state.phase = "generating"
        t0 = time.perf_counter()
        done = 0
        for block in model.stream_audio(
            audio, roll, n, hold=hold, seed_rng=seed, temperature=temperature, cancelled=cancel.is_set
        ):
            parts.append(block)
            done += len(block)
            state.generated_s = done / sr
            if out is None:
                continue
            out.write(block, sr)
            rtf = (time.perf_counter() - t0) / state.generated_s
            if not out.playing and state.generated_s >= start_point(state.total_s, rtf) - 1e-9:
                out.start()
                started_after = state.generated_s
                state.playing = True
            state.played_s = out.consumed_frames / out.sample_rate
        wall = time.perf_counter() - t0
        import numpy as np

        path = path if isinstance(path, Path) else path()
        write_wav(np.concatenate(parts), path, sr)
        take = AudioTake(path, n / sr, sr, round(wall / (n / sr), 3), where, 0.0, started_after)
        if out is None:
            return take
        out.finish()
        if not out.playing:
            out.start()
            take.started_after_s = started_after = state.generated_s
            state.playing = True
        state.phase = "playing"
        left = (out.written_frames - out.consumed_frames) / out.sample_rate
        while not out.wait_done(cancel.is_set, timeout=0.05):
            state.played_s = out.consumed_frames / out.sample_rate
            if cancel.is_set() or out.dead:
                break
            if time.perf_counter() - t0 > wall + left + 5.0:  # the server stopped its clock
                break
        out.stop()
        take.played_s = state.played_s = out.consumed_frames / out.sample_rate
        take.stopped = cancel.is_set()
        if out.dead:
            take.output = "the JACK server stopped while the take played"
        return take
    finally:
        if out is not None:
            out.stop()
            if isinstance(out, JackAudioOutput):
                out.release()  # kept for the next take: deactivating it can deadlock (audio_out._parked)
            else:
                out.close()


class AudioContinuer(QObject):
    """The Continue as Audio and Save Audio Take actions of a window, and the one job it runs."""

    finished = Signal(str)  # the status line once a continuation ends (done, cancelled, or failed)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.win = window
        self.seconds = DEFAULT_SECONDS
        self.action = QAction("Continue as Audio", window)
        self.action.setObjectName("continue_audio")
        self.action.setStatusTip(
            "Render the sketch and let the raw-audio WaveNet (paper 004) continue it as sound"
        )
        self.action.triggered.connect(self.toggle)
        window.addAction(self.action)
        self.save_action = QAction("Save Audio Take…", window)
        self.save_action.setObjectName("save_audio_take")
        self.save_action.setStatusTip("Save the last audio continuation as a WAV file")
        self.save_action.setEnabled(False)
        self.save_action.triggered.connect(self.save_dialog)
        window.addAction(self.save_action)
        self.last_take: AudioTake | None = None
        self.state = AudioJobState()
        self._cancel: threading.Event | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_MS)
        self._timer.timeout.connect(self._show_progress)

    # -- UI thread ----------------------------------------------------------------------------
    def toggle(self) -> None:
        """Start a continuation, or cancel the running one."""
        if self.busy():
            self.cancel()
            self._report("Audio continuation cancelled")
        else:
            self.start()

    def start(self, seconds: float | None = None) -> None:
        """Continue the sketch as audio in the background (see the module docstring)."""
        self.cancel()
        win = self.win
        song = win.doc.snapshot()
        if not any(t.notes for t in song.tracks if not t.is_drum):
            self._report("Continue as Audio: the sketch has no notes to continue")
            return
        secs = float(seconds if seconds is not None else self.seconds)
        if not (math.isfinite(secs) and 0.05 <= secs <= 30.0):
            self._report(f"Continue as Audio: the length must be 0.05 to 30 seconds, not {secs:g}")
            return
        cancel = threading.Event()
        state = AudioJobState(total_s=secs)
        self._cancel, self.state = cancel, state
        stem = Path(win.doc.display_name).stem.replace(" ", "_") or "take"
        models, soundfont = win.gen.models, win.settings.soundfont
        self.action.setText("Cancel Audio Continuation")
        self._timer.start()
        self._show_progress()

        def done(take: AudioTake) -> None:
            if cancel is not self._cancel:  # cancelled (the line was given) or replaced
                return
            self._end()
            self.last_take = take
            self.save_action.setEnabled(True)
            if take.started_after_s is None:
                how = f"not played ({take.output})"
            elif take.started_after_s >= take.seconds - 1e-6:
                how = f"played after generating, on {take.output}"
            else:
                how = f"played while generating (from {take.started_after_s:.1f} s on), on {take.output}"
            self._report(
                f"Audio continuation: {take.seconds:.1f} s (real-time factor {take.real_time_factor:.2f}), "
                f"{how}; take kept as {take.path.name} (File ▸ Save Audio Take…)"
            )

        def failed(exc: BaseException) -> None:
            if cancel is not self._cancel:
                return
            self._end()
            self.win.show_error("Continue as Audio", str(exc))
            self.finished.emit(f"Continue as Audio: {exc}")

        win.tasks.submit(
            lambda: continue_as_audio_job(
                song,
                load_model=models.get,
                seconds=secs,
                path=lambda: take_path(stem),  # the folder is made on the task thread
                cancel=cancel,
                state=state,
                soundfont=soundfont,
            ),
            done,
            failed,
            name="musicgen-continue-audio",
        )

    def cancel(self) -> None:
        """Stop the running continuation (within one block) and silence its output."""
        if self._cancel is not None:
            self._cancel.set()
        self._end()

    def busy(self) -> bool:
        """Whether a continuation is running."""
        return self._cancel is not None

    def save_dialog(self) -> None:
        """Ask where to save the last take; copy it there on a task thread."""
        take = self.last_take
        if take is None:
            return
        dest, _ = QFileDialog.getSaveFileName(
            self.win,
            "Save Audio Take",
            str(Path(self.win.files.last_dir()) / take.path.name),
            "WAV audio (*.wav)",
        )
        if dest:
            self.save_take(dest)

    def save_take(self, dest: str | Path) -> None:
        """Copy the last take to ``dest`` in the background; one line when done or refused."""
        take = self.last_take
        if take is None:
            return
        src, d = take.path, Path(dest)

        def copy() -> Path:
            from musicgen_app.core.safe_io import check_writable_target

            check_writable_target(d, DeviceError)
            try:
                shutil.copyfile(src, d)
            except OSError as exc:
                raise DeviceError(f"cannot write {d}: {exc.strerror or exc}") from exc
            return d

        self.win.tasks.submit(
            copy,
            lambda p: self._report(f"Saved the audio take as {p}"),
            lambda exc: self.win.show_error("Save Audio Take", str(exc)),
            name="musicgen-save-take",
        )

    def _end(self) -> None:
        self._cancel = None
        self._timer.stop()
        self.action.setText("Continue as Audio")

    def _report(self, text: str) -> None:
        self.win.show_message(text, 15000)
        self.finished.emit(text)

    def _show_progress(self) -> None:
        s = self.state
        if s.phase in ("loading", "rendering"):
            text = f"Continue as Audio: {s.phase} the {'model' if s.phase == 'loading' else 'sketch'}…"
        else:
            text = f"Continue as Audio: generated {s.generated_s:.1f} / {s.total_s:.1f} s"
            if s.playing:
                text += f", playing {s.played_s:.1f} s"
        self.win.show_message(text, 2000)
