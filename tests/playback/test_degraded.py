"""Missing pieces are messages, not crashes: no MIDI system, no audio device, no libfluidsynth,
missing or corrupt SoundFonts. This machine really has no /dev/snd/seq and no sound card."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicgen_app.core.midi_io import write_midi
from musicgen_app.errors import DeviceError, SoundFontError
from musicgen_app.playback.midi_ports import resolve_midi_api
from musicgen_app.playback.outputs import FluidSynthOutput, MidiPortOutput
from musicgen_app.playback.render import render_song

from .helpers import two_track_song


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "musicgen_app.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def song_file(tmp_path: Path) -> Path:
    path = tmp_path / "two.mid"
    write_midi(two_track_song(), path)
    return path


def test_no_midi_system_names_what_is_missing(no_midi_system: None) -> None:
    with pytest.raises(DeviceError, match=r"/dev/snd/seq.*JACK") as exc:
        resolve_midi_api()
    assert "modprobe snd-seq" in str(exc.value)
    with pytest.raises(DeviceError, match="ALSA sequencer"):
        resolve_midi_api("alsa")
    with pytest.raises(DeviceError, match="no JACK server is running"):
        MidiPortOutput("synth", api="jack")


def test_cli_without_midi_system_and_audio_device(
    no_midi_system: None, song_file: Path, tmp_path: Path
) -> None:
    r = _cli("play", str(song_file), "--device", "Some Synth")
    assert r.returncode == 2
    assert r.stderr.startswith("error: no MIDI system found") and "Traceback" not in r.stderr
    r = _cli("play", str(song_file))  # FluidSynth, but no sound card and no sound server here
    assert r.returncode == 2
    assert "no audio output could be opened (tried pulseaudio" in r.stderr and "musicgen render" in r.stderr
    # everything else keeps working: render and the device survey
    wav = tmp_path / "out.wav"
    r = _cli("render", str(song_file), "-o", str(wav))
    assert r.returncode == 0, r.stderr
    assert wav.stat().st_size > 44100 * 4 * 3
    r = _cli("devices", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["midi"]["api"] is None and "/dev/snd/seq" in info["midi"]["error"]
    assert info["fluidsynth"]["library"] and info["fluidsynth"]["audio_drivers"] == []
    assert "no audio output opens" in info["fluidsynth"]["error"]


def test_no_audio_device_is_a_device_error(no_midi_system: None) -> None:
    with pytest.raises(DeviceError, match="no audio output could be opened") as exc:
        FluidSynthOutput()
    assert "jack" in str(exc.value) and "alsa" in str(exc.value)
    with pytest.raises(DeviceError, match="tried alsa"):
        FluidSynthOutput(driver="alsa")


def test_without_libfluidsynth_render_fails_clearly_and_devices_still_works(
    song_file: Path, tmp_path: Path
) -> None:
    env = {"MUSICGEN_NO_FLUIDSYNTH": "1"}
    r = _cli("render", str(song_file), "-o", str(tmp_path / "x.wav"), env=env)
    assert r.returncode == 2
    assert "libfluidsynth" in r.stderr and "apt-get install libfluidsynth3" in r.stderr
    r = _cli("devices", env=env)
    assert r.returncode == 0
    assert "FluidSynth: missing" in r.stdout and "libfluidsynth" in r.stdout


def test_missing_and_corrupt_soundfonts(song_file: Path, tmp_path: Path) -> None:
    song = two_track_song()
    with pytest.raises(SoundFontError, match="SoundFont not found"):
        render_song(song, soundfont=tmp_path / "nope.sf2")
    text = tmp_path / "notes.sf2"
    text.write_text("this is not a soundfont")
    with pytest.raises(SoundFontError, match="not a SoundFont"):
        FluidSynthOutput(soundfont=text, audio=False)
    # the right header, a damaged body: FluidSynth's sfload returns -1, which we check
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF" + (1000).to_bytes(4, "little") + b"sfbk" + os.urandom(200))
    with pytest.raises(SoundFontError, match=r"could not load the SoundFont broken\.sf2"):
        FluidSynthOutput(soundfont=broken, audio=False)
    r = _cli("render", str(song_file), "-o", str(tmp_path / "y.wav"), "--soundfont", str(broken))
    assert r.returncode == 2 and r.stderr.startswith("error: FluidSynth could not load the SoundFont")
