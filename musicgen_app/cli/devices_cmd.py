"""`musicgen devices [--json]`: the MIDI system in use, MIDI inputs and outputs, audio drivers that work.

Whatever is missing is reported with how to get it; the command itself always succeeds.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from musicgen_app.errors import DeviceError
from musicgen_app.playback.midi_ports import API_NAMES

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musicgen devices`."""
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    parser.add_argument("--midi-api", choices=API_NAMES, help="force the MIDI system")


def survey(midi_api: str | None = None) -> dict[str, Any]:
    """What this machine offers: MIDI system and ports, FluidSynth, SoundFont, working audio drivers."""
    from musicgen_app.playback import midi_ports, synth

    info: dict[str, Any] = {"midi": {}, "fluidsynth": {}}
    try:
        api = midi_ports.resolve_midi_api(midi_api)
        info["midi"] = {
            "api": midi_ports.api_name(api),
            "inputs": midi_ports.list_ports("in", api),
            "outputs": midi_ports.list_ports("out", api),
            "error": None,
        }
    except DeviceError as exc:
        info["midi"] = {"api": None, "inputs": [], "outputs": [], "error": str(exc)}
    fs: dict[str, Any] = {"library": False, "soundfont": None, "audio_drivers": [], "error": None}
    try:
        synth.fluidsynth_module()
        fs["library"] = True
        fs["soundfont"] = str(synth.check_soundfont(None))
        fs["audio_drivers"] = synth.working_audio_drivers()
        if not fs["audio_drivers"]:
            fs["error"] = (
                "no audio output opens (tried " + ", ".join(synth.DRIVER_ORDER) + "): start a sound server "
                "(PulseAudio/PipeWire) or JACK; `musicgen render` and MIDI ports work without one"
            )
    except DeviceError as exc:
        fs["error"] = str(exc)
    info["fluidsynth"] = fs
    return info


def run(args: argparse.Namespace) -> int:
    """Print the survey."""
    info = survey(args.midi_api)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    midi = info["midi"]
    if midi["error"]:
        print(f"MIDI: unavailable: {midi['error']}")
    else:
        print(f"MIDI system: {midi['api']}")
        print("MIDI inputs:  " + (", ".join(midi["inputs"]) or "none"))
        print("MIDI outputs: " + (", ".join(midi["outputs"]) or "none"))
    fs = info["fluidsynth"]
    print("FluidSynth: " + ("found" if fs["library"] else "missing"))
    if fs["soundfont"]:
        print(f"SoundFont: {fs['soundfont']}")
    print("audio drivers that work: " + (", ".join(fs["audio_drivers"]) or "none"))
    if fs["error"]:
        print(f"note: {fs['error']}")
    return 0
