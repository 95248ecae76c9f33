"""Settings remembered between runs (devices, recent files, generation choices) as JSON in
``paths.config_dir() / "gui.json"``. Plain data, read once at start and written on change."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from musicgen_app.core import paths
from musicgen_app.core.safe_io import read_capped, write_file_atomic
from musicgen_app.errors import MusicgenError
from musicgen_app.playback.jam import DEFAULT_SILENCE_MS, SILENCE_MS_RANGE

logger = logging.getLogger(__name__)

MAX_RECENT = 10
MAX_SETTINGS_BYTES = 1024 * 1024
LEAD_IN_CHOICES = (0, 1, 2)  # bars of lead-in before a take: none, 1 bar, 2 bars


@dataclass
class AppSettings:
    """Everything the window remembers."""

    output: str = "fluidsynth"  # "fluidsynth", "none" or a MIDI port name
    soundfont: str = ""  # empty: the default SoundFont
    audio_driver: str = ""  # empty: the first driver that works
    buffer_size: int = 256  # FluidSynth period size (frames): latency
    input_port: str = ""  # empty: no MIDI keyboard
    thru: bool = True
    metronome: bool = False
    recent_files: list[str] = field(default_factory=list)
    model: str = ""
    temperature: float = 1.0
    bars: int = 4
    variations: int = 1
    seed: int = 0
    random_seed: bool = True
    key_lock: str = "auto"
    lead_in_bars: int = 1  # Continue plays this many bars of the sketch before the take: 0, 1 or 2
    jam_silence_ms: int = DEFAULT_SILENCE_MS  # Jam answers after a pause this long (Settings ▸ Devices)
    snap: str = "1/16"
    window_geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""  # base64 of QMainWindow.saveState() (toolbars, docks)
    welcome_shown: bool = False  # the first-launch screen was seen

    @staticmethod
    def path() -> Path:
        """Where the settings live."""
        return paths.config_dir() / "gui.json"

    @classmethod
    def load(cls) -> AppSettings:
        """The saved settings, or defaults when none are saved or the file is unreadable."""
        data: dict[str, Any] = {}
        path = cls.path()
        try:
            if path.exists() or path.is_symlink():
                data = json.loads(read_capped(path, MAX_SETTINGS_BYTES, MusicgenError, "settings file"))
        except (MusicgenError, ValueError, RecursionError) as exc:  # a device or FIFO is refused too
            logger.warning("settings file unreadable, using defaults: %s", exc)
        known = {f.name for f in fields(cls)}
        try:
            s = cls(**{k: v for k, v in data.items() if k in known}) if isinstance(data, dict) else cls()
        except TypeError as exc:
            logger.warning("settings file has odd values, using defaults: %s", exc)
            s = cls()
        if s.lead_in_bars not in LEAD_IN_CHOICES:
            s.lead_in_bars = 1
        if not isinstance(s.jam_silence_ms, int) or not (
            SILENCE_MS_RANGE[0] <= s.jam_silence_ms <= SILENCE_MS_RANGE[1]
        ):
            logger.warning("settings: jam_silence_ms %r is out of range; using the default", s.jam_silence_ms)
            s.jam_silence_ms = DEFAULT_SILENCE_MS
        return s

    def effective_output(self) -> str:
        """The output to open: ``MUSICGEN_OUTPUT`` (``--output``, this run only) or the saved choice."""
        return os.environ.get("MUSICGEN_OUTPUT") or self.output

    def save(self) -> None:
        """Write the settings (atomically); failures are logged, never raised."""
        try:
            write_file_atomic(self.path(), json.dumps(asdict(self), indent=2).encode("utf-8"), MusicgenError)
        except MusicgenError as exc:
            logger.warning("could not save settings: %s", exc)

    def add_recent(self, path: str | Path) -> None:
        """Put ``path`` first in the recent files list."""
        p = str(Path(path).resolve())
        self.recent_files = [p] + [r for r in self.recent_files if r != p]
        del self.recent_files[MAX_RECENT:]
