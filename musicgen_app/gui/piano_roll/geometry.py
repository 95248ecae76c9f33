"""Pure mapping between the song (ticks, pitches) and the roll's pixels, with zoom and scroll.

No widget is needed: the roll, the ruler, the keyboard strip and the velocity lane all share one
:class:`RollGeometry`, and tests check the mapping directly. Pitch 127 is at the top.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MIN_PX_PER_TICK = 1e-4
MAX_PX_PER_TICK = 4.0
MIN_KEY_HEIGHT = 1.0
MAX_KEY_HEIGHT = 40.0
PITCHES = 128

# name -> (fraction of a whole note, triplet?). "off" snaps to the tick; "1 bar" (division 0)
# follows the meter.
BAR_SNAP = "1 bar"
SNAP_CHOICES: dict[str, tuple[int, bool] | None] = {
    BAR_SNAP: (0, False),
    "1/2": (2, False),
    "1/4": (4, False),
    "1/8": (8, False),
    "1/16": (16, False),
    "1/32": (32, False),
    "1/4T": (4, True),
    "1/8T": (8, True),
    "1/16T": (16, True),
    "off": None,
}


def snap_ticks(name: str, resolution: int, bar_ticks: int | None = None) -> int:
    """The grid step in ticks for a snap choice (1 for "off"; "1 bar" is ``bar_ticks``, 4/4's
    bar when not given)."""
    choice = SNAP_CHOICES.get(name)
    if choice is None:
        return 1
    division, triplet = choice
    if division == 0:
        return max(1, bar_ticks if bar_ticks is not None else resolution * 4)
    step = resolution * 4 / division
    if triplet:
        step = step * 2 / 3
    return max(1, round(step))


@dataclass
class RollGeometry:
    """Zoom and scroll of the roll.

    ``px_per_tick`` is the horizontal zoom, ``key_height`` the height of one semitone row in
    pixels; ``scroll_tick`` is the tick at the left edge and ``scroll_y`` the pixel offset of the
    top edge from the top of pitch 127's row.
    """

    px_per_tick: float = 0.1
    key_height: float = 10.0
    scroll_tick: float = 0.0
    scroll_y: float = 0.0
    width: int = 800
    height: int = 600

    # -- mapping ------------------------------------------------------------------------------
    def tick_to_x(self, tick: float) -> float:
        """The x pixel of ``tick``."""
        return (tick - self.scroll_tick) * self.px_per_tick

    def x_to_tick(self, x: float) -> float:
        """The (fractional) tick under pixel ``x``."""
        return self.scroll_tick + x / self.px_per_tick

    def pitch_to_y(self, pitch: int) -> float:
        """The top edge of ``pitch``'s row."""
        return (PITCHES - 1 - pitch) * self.key_height - self.scroll_y

    def y_to_pitch(self, y: float) -> int:
        """The pitch whose row contains pixel ``y`` (clamped to 0-127)."""
        row = math.floor((y + self.scroll_y) / self.key_height)
        return max(0, min(PITCHES - 1, PITCHES - 1 - row))

    @property
    def content_height(self) -> float:
        """Height of all 128 rows in pixels."""
        return PITCHES * self.key_height

    # -- what is visible ----------------------------------------------------------------------
    def visible_ticks(self) -> tuple[float, float]:
        """Ticks at the left and right edges."""
        return self.scroll_tick, self.x_to_tick(self.width)

    def visible_pitches(self) -> tuple[int, int]:
        """Lowest and highest pitch with a row at least partly visible."""
        return self.y_to_pitch(self.height - 1), self.y_to_pitch(0)

    # -- zoom and scroll ----------------------------------------------------------------------
    def zoom_x(self, factor: float, anchor_x: float | None = None) -> None:
        """Zoom horizontally by ``factor`` keeping the tick under ``anchor_x`` in place."""
        ax = self.width / 2 if anchor_x is None else anchor_x
        tick = self.x_to_tick(ax)
        self.px_per_tick = min(MAX_PX_PER_TICK, max(MIN_PX_PER_TICK, self.px_per_tick * factor))
        self.scroll_tick = max(0.0, tick - ax / self.px_per_tick)

    def zoom_y(self, factor: float, anchor_y: float | None = None) -> None:
        """Zoom vertically by ``factor`` keeping the pitch position under ``anchor_y`` in place."""
        ay = self.height / 2 if anchor_y is None else anchor_y
        rel = (ay + self.scroll_y) / self.key_height
        self.key_height = min(MAX_KEY_HEIGHT, max(MIN_KEY_HEIGHT, self.key_height * factor))
        self.scroll_y = rel * self.key_height - ay
        self.clamp_scroll()

    def clamp_scroll(self) -> None:
        """Keep the scroll inside the content."""
        self.scroll_tick = max(0.0, self.scroll_tick)
        self.scroll_y = max(0.0, min(self.scroll_y, max(0.0, self.content_height - self.height)))

    def show_ticks(self, start_tick: float, end_tick: float) -> None:
        """Zoom and scroll so that ``start_tick``..``end_tick`` fills the width."""
        span = max(1.0, end_tick - start_tick)
        self.px_per_tick = min(MAX_PX_PER_TICK, max(MIN_PX_PER_TICK, self.width / span))
        self.scroll_tick = max(0.0, float(start_tick))

    def show_pitches(self, low: int, high: int) -> None:
        """Zoom and scroll so that pitches ``low``..``high`` fill the height."""
        rows = max(1, high - low + 1)
        self.key_height = min(MAX_KEY_HEIGHT, max(MIN_KEY_HEIGHT, self.height / rows))
        self.scroll_y = (PITCHES - 1 - high) * self.key_height
        self.clamp_scroll()

    def center_pitch(self, pitch: int) -> None:
        """Scroll vertically so that ``pitch`` is in the middle."""
        self.scroll_y = self.pitch_to_y(pitch) + self.scroll_y - self.height / 2
        self.clamp_scroll()

    def snap(self, tick: float, step: int, *, mode: str = "round") -> int:
        """``tick`` on the grid of ``step`` ticks (``round``, ``floor``); step 1 = no snap."""
        if step <= 1:
            return max(0, round(tick))
        q = tick / step
        q = math.floor(q) if mode == "floor" else round(q)
        return max(0, int(q * step))
