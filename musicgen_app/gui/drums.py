"""Drum tracks in the editor: the keyboard strip names the GM percussion keys, and Continue on
a drum track asks for a model that can continue drums instead of applying a melody model."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter

from musicgen_app.core.gm import GM_DRUM_NAMES, is_drum_track
from musicgen_app.core.song import Track
from musicgen_app.gui.piano_roll.geometry import RollGeometry

logger = logging.getLogger(__name__)

DRUM_KEYBOARD_WIDTH = 96


def model_plays_drums(info: Any) -> bool:
    """Whether a model's card says it can continue drums (``"drums": true`` or "drums" among its
    ``"instruments"``). None of the shipped models can: they learnt melodies and chorales."""
    card = getattr(info, "card", None) or {}
    if not isinstance(card, dict):
        return False
    instruments = card.get("instruments", ())
    return card.get("drums") is True or (isinstance(instruments, list) and "drums" in instruments)


def continue_refusal(track: Track, model_name: str, info: Any, all_infos: list[Any]) -> str | None:
    """Why Continue must not run on ``track`` with the chosen model, or None when it may.

    A drum track needs a model that plays drums: the message names one when another model can,
    and says that none can otherwise, rather than letting a melody model write pitches into the
    percussion map.
    """
    if not is_drum_track(track) or model_plays_drums(info):
        return None
    able = [str(getattr(i, "name", "")) for i in all_infos if model_plays_drums(i)]
    if able:
        return (
            f"{model_name} continues melodies, not drums. Choose a model that plays drums "
            f"({', '.join(able)}), or pick a melody track."
        )
    return (
        "None of the installed models can continue drums (they learnt melodies and chorales). "
        "Pick a melody track to continue, or write the drums by hand."
    )


def paint_drum_keys(p: QPainter, g: RollGeometry, width: int, lit: set[int]) -> None:
    """The keyboard strip of a drum track: each GM percussion key named, the others greyed."""
    p.fillRect(QRectF(0, 0, width, g.height), QColor(236, 237, 242))
    lo, hi = g.visible_pitches()
    font = QFont(p.font())
    font.setPointSizeF(max(5.5, min(8.5, g.key_height * 0.7)))
    p.setFont(font)
    show_text = g.key_height >= 6
    for pitch in range(lo, hi + 1):
        y = g.pitch_to_y(pitch)
        name = GM_DRUM_NAMES.get(pitch)
        rect = QRectF(0, y, width, g.key_height)
        if pitch in lit:
            p.fillRect(rect, QColor(240, 150, 40))
        elif name:
            p.fillRect(rect, QColor(255, 255, 255))
        p.setPen(QColor(200, 200, 210))
        p.drawLine(QPointF(0, y + g.key_height), QPointF(width, y + g.key_height))
        if name and show_text:
            p.setPen(QColor(40, 40, 50))
            p.drawText(
                rect.adjusted(3, 0, -2, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name
            )
