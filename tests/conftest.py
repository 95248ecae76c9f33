"""Shared fixtures: every test gets its own user data/cache/config directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path_factory.mktemp("userdirs")
    for name in ("DATA", "CONFIG"):
        monkeypatch.setenv(f"MUSICGEN_{name}_DIR", str(base / name.lower()))


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


# JACK fixtures for every folder (playback, gui, cli): a private server and a MIDI receiver.
from jack_support import (  # noqa: E402, F401
    jack_receiver,
    jack_server,
    killable_jack_server,
    no_midi_system,
)
