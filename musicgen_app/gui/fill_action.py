"""Fill in the window: regenerate the selected time range of the active track.

The range is the loop region when there is one (drag on the ruler), else the bars spanning the
selected notes. Fill runs through the window's generation controller like Continue (same worker
thread, takes list, streaming into the roll and the speakers, Esc, Again), with a request whose
``fill_end`` is set; the take is heard over the song with the range's old notes taken out.
Accepting a fill take replaces the notes starting in the range by the take: one undo step.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from musicgen_app.core.edits import CompoundEdit, add_notes, delete_notes
from musicgen_app.core.song import Note, Song

logger = logging.getLogger(__name__)


def selected_range(win: Any) -> tuple[int, int] | None:
    """The range to fill: the loop region, else the whole bars under the selected notes."""
    song: Song = win.doc.song
    if song.loop and song.loop[1] > song.loop[0]:
        return int(song.loop[0]), int(song.loop[1])
    notes = win.doc.selected_notes()
    if not notes:
        return None
    first, last = min(n.start_tick for n in notes), max(n.end_tick for n in notes)
    lines = song.bar_starts(last + song.ticks_per_bar(last))
    start = max((t for t in lines if t <= first), default=0)
    end = min((t for t in lines if t >= last), default=last)
    return start, max(end, start + 1)


def without_range(song: Song, track: int, start: int, end: int) -> Song:
    """``song`` with the notes of ``track`` that start in ``[start, end)`` taken out."""
    out = song.copy()
    out.tracks[track].notes = [n for n in out.tracks[track].notes if not start <= n.start_tick < end]
    return out


def fill_model(win: Any) -> tuple[str, str]:
    """The model Fill uses and a line for the status bar: the chosen model when it can fill a range
    (its card's family fills), else the default fill model (or the first offered that fills) with a
    line saying so; ``("", reason)`` when none can. Reads the cards the panel holds (no file)."""
    from musicgen_app.ml.fill import DEFAULT_FILL_MODEL
    from musicgen_app.ml.registry import card_fills

    chosen = win.panel.model_name()
    info = win.panel.model_info(chosen)
    if info is not None and card_fills(info.card):
        return chosen, ""
    infos = {i.name: i for i in win.panel.model_infos()}
    able = [n for n, i in infos.items() if card_fills(i.card)]
    if not able:
        return "", "No model can fill a range (melody-lstm, wavenet). Train one or load a checkpoint."
    name = DEFAULT_FILL_MODEL if DEFAULT_FILL_MODEL in able else able[0]
    shown = info.name if info is not None else (chosen or "no model")
    return name, f"Fill uses {name}: {shown} cannot fill a range"


def start_fill(win: Any, again: bool = False) -> None:
    """Fill the selected range of the active track (with ``again``: one more take of the last fill)
    with :func:`fill_model`'s model."""
    from musicgen_app.gui import editor_setup
    from musicgen_app.gui.generation import ContinueRequest

    prev = win.gen.request
    again = again and prev is not None and prev.fill_end is not None and bool(win.gen.takes)
    if again:
        model, why = prev.model, ""
        song, track, start, end = prev.song, prev.track, prev.start_tick, int(prev.fill_end)
    else:
        model, why = fill_model(win)
        if not model:
            win.show_error("Fill", why)
            return
        rng = selected_range(win)
        if rng is None:
            win.show_error("Fill", "Select a time range to fill: drag on the ruler, or select notes.")
            return
        if editor_setup.continue_blocked(win):  # a drum track
            return
        song, track, (start, end) = win.doc.snapshot(), win.doc.active_track, rng
    win.stop_all()
    seed = win.panel.seed_value()
    if again and seed is not None:
        seed = max([seed - 1, *(t.seed for t in win.gen.takes)]) + 1
    req = ContinueRequest(
        model=model,
        song=song,
        track=track,
        start_tick=start,
        bars=1,
        temperature=win.panel.temperature_value(),
        variations=1 if again else win.panel.variations.value(),
        seed=seed,
        key_lock=win.panel.key_lock_value(),
        fill_end=end,
    )
    lead = min(start, song.ticks_per_bar(start))
    # sound first, as Continue: the player starts, the generation thread sends it the notes
    win.playback.play_stream(
        without_range(win.doc.snapshot(), track, start, end), start, end, lead_in_ticks=lead
    )
    win.gen.start(req, keep_takes=again, live=win.playback.scheduler)
    win.canvas.show_take([], reveal_from=float(start - lead))
    win.takes.refresh_list()
    logger.info("fill: model %s, track %d, ticks %d-%d", model, track + 1, start, end)
    if not again and why:
        win.show_message(why)


def take_edit(song: Song, req: Any, track: int, notes: list[Note]) -> Any:
    """The edit that accepts a take: a fill replaces the notes starting in its range (one step)."""
    channel = song.tracks[track].channel
    notes = [replace(n, channel=channel) for n in notes]
    end = getattr(req, "fill_end", None) if req is not None else None
    if end is None:
        return add_notes(track, notes)
    old = [n for n in song.tracks[track].notes if req.start_tick <= n.start_tick < end]
    return CompoundEdit((delete_notes(track, old), add_notes(track, notes)))


def is_fill(req: Any) -> bool:
    """Whether ``req`` (the controller's last request) was a fill."""
    return req is not None and getattr(req, "fill_end", None) is not None
