"""Jam in the window: call and response with the MIDI keyboard (see :mod:`musicgen_app.playback.jam`).

With the Metronome on (M), the jam clicks every beat, the phrase is played to it and each answer
starts at the next bar line after a beat of quiet. Turning Jam on adds two tracks, "Jam: you" and
"Jam: model" (one undo step), and runs a
:class:`~musicgen_app.playback.jam.Jam` on a worker thread: the keyboard's messages (tapped from the
playback controller's keyboard queue as they arrive, already played through: the UI thread is not
on the path from a key to the answer) are its input, the window's scheduler
plays the answers, the model chosen in the panel answers at the song's tempo. Each exchange comes
back to the UI thread through a queued signal and is written into the two tracks, after the end of
the song, as one undo step. Turning Jam off (or Esc) stops the answer at once and ends the thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from musicgen_app.core.edits import CompoundEdit, add_notes
from musicgen_app.core.song import Note, Track

logger = logging.getLogger(__name__)


class JamMode(QObject):
    """The window's Jam toggle."""

    exchanged = Signal(object)  # an Exchange, emitted on the jam thread, handled on the UI thread
    ready = Signal()  # the model is loaded and warmed up: play
    failed = Signal(str)

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.jam: Any = None
        self.tracks: tuple[int, int] = (-1, -1)
        self.offset_tick = 0
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self.exchanged.connect(self._record, Qt.ConnectionType.QueuedConnection)
        self.failed.connect(lambda text: win.show_error("Jam", text), Qt.ConnectionType.QueuedConnection)
        self.ready.connect(self._ready, Qt.ConnectionType.QueuedConnection)
        self._tracks_step = -1  # the undo index right after the Jam tracks were added
        self._tracks_doc: Any = None  # the document they were added to

    @property
    def running(self) -> bool:
        """Whether the jam thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def toggle(self, on: bool) -> None:
        """Start or stop jamming."""
        if on:
            self.start()
        else:
            self.stop()
            self._drop_unused_tracks()

    def start(self) -> None:
        """Add the two tracks and start listening."""
        from musicgen_app.playback.jam import Jam, JamConfig

        win = self.win
        model_name = win.panel.model_name()
        if not model_name or self.running:
            if not model_name:
                win.show_error("Jam", "There is no model to answer with. Train one or load a checkpoint.")
            return
        win.gen.cancel()
        win.playback.stop()
        song = win.doc.song
        n = len(song.tracks)
        used = {t.channel for t in song.tracks}
        free = [c for c in range(16) if c not in used and c != 9] + [0, 1]
        tracks = [
            *song.tracks,
            Track(name="Jam: you", channel=free[0]),
            Track(name="Jam: model", channel=free[1]),
        ]
        win.doc.set_song_attr("tracks", tracks, "Jam tracks")
        self._tracks_step, self._tracks_doc = win.doc.undo_stack.index(), win.doc
        self.tracks = (n, n + 1)
        bar = song.ticks_per_bar(song.length_ticks)
        self.offset_tick = -(-song.length_ticks // bar) * bar + (bar if song.length_ticks else 0)
        bpm = 60_000_000 / song.tempo_map().us_per_quarter_at(self.offset_tick)
        cfg = JamConfig(
            bars=win.panel.bars.value(),
            silence_ms=float(win.settings.jam_silence_ms),  # Settings ▸ Devices
            bpm=bpm,
            resolution=song.resolution,
            channel=free[1],
            metronome=win.act_metronome.isChecked(),  # M: play to a click, answers on bar lines
            beats_per_bar=max(1, round(bar / song.resolution)),
        )
        self._inbox = queue.SimpleQueue()
        win.playback.add_keyboard_tap(self._inbox.put)  # the keys reach the jam without the UI thread
        self._connected = True
        self._stop = threading.Event()
        models, seed, temperature = win.gen.models, win.panel.seed_value(), win.panel.temperature_value()
        scheduler = win.playback.scheduler

        def run() -> None:
            from musicgen_app.ml.generate import SamplingConfig, start_session

            try:
                model = models.get(model_name)
                seeds = iter(range(seed if seed is not None else 1, 2**63))

                def make_session(phrase, start_tick: int, bars: int) -> Any:
                    sampling = SamplingConfig(
                        temperature=temperature, seed=next(seeds) if seed is not None else None
                    )
                    return start_session(
                        model, phrase, 0, start_tick=start_tick, bars=bars, sampling=sampling
                    )

                self.jam = Jam(
                    scheduler, make_session, cfg, inbox=self._inbox, on_exchange=self.exchanged.emit
                )
                self.jam.warm_up()
            except Exception as exc:  # a model that cannot answer: one message, no thread left
                logger.warning("jam could not start", exc_info=True)
                self.failed.emit(str(exc))
                return
            self.ready.emit()
            self.jam.run(self._stop)

        self._thread = threading.Thread(target=run, name="musicgen-jam", daemon=True)
        self._thread.start()
        logger.info("jam on: %s answers %d bars at %.0f BPM", model_name, cfg.bars, bpm)

    def _ready(self) -> None:
        """The model is warm: say what to do, or that no keyboard is open to play it from."""
        if self.win.playback.keyboard_port:
            metronome = self.jam is not None and self.jam.cfg.metronome
            pause = "a beat" if metronome else f"{self.win.settings.jam_silence_ms} ms"
            self.win.show_message(f"Jam: play a phrase, then pause ({pause})")
        else:
            self.win.show_message("Jam: no MIDI keyboard is open: choose one in Settings ▸ Devices…", 12000)

    def stop(self) -> None:
        """Stop the answer at once and end the jam thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            logger.info("jam off")
        self._thread = None
        if self._connected:
            self.win.playback.remove_keyboard_tap(self._inbox.put)
            self._connected = False

    def _drop_unused_tracks(self) -> None:
        """Turned off having recorded nothing, Jam leaves no empty Jam tracks behind: their step is
        undone when nothing was done after it."""
        doc, (you, model) = self.win.doc, self.tracks
        tracks = doc.song.tracks
        stack = doc.undo_stack
        if (
            self._tracks_step >= 0
            and doc is self._tracks_doc
            and stack.index() == self._tracks_step
            and model == len(tracks) - 1
            and you == model - 1
            and not tracks[you].notes
            and not tracks[model].notes
        ):
            stack.undo()
        self._tracks_step, self._tracks_doc = -1, None

    def _record(self, ex: Any) -> None:
        """UI thread: the phrase and what was played of its answer into the Jam tracks (one step)."""
        you, model = self.tracks
        song = self.win.doc.song
        if not (0 <= you < len(song.tracks) and 0 <= model < len(song.tracks)):
            return  # the tracks were removed meanwhile
        off = self.offset_tick

        def placed(notes: list[Note], channel: int) -> list[Note]:
            return [Note(n.start_tick + off, n.pitch, n.end_tick + off, n.velocity, channel) for n in notes]

        edits = []
        if ex.phrase:
            edits.append(add_notes(you, placed(ex.phrase, song.tracks[you].channel)))
        if ex.answer:
            edits.append(add_notes(model, placed(ex.answer, song.tracks[model].channel)))
        if edits:
            self.win.apply_edit(CompoundEdit(tuple(edits)), "Jam exchange")
        logger.info(
            "jam: exchange recorded: %d notes played, %d answered%s",
            len(ex.phrase),
            len(ex.answer),
            " (interrupted)" if ex.interrupted else "",
        )
