"""Fixed-seed continuations of every shipped MIDI model are byte-identical to the recorded ones.

For each shipped model that continues MIDI and three example sketches (the chorale with
``voices=harmony``), the continuation drawn with a fixed seed and temperature (the same path as
`musicgen continue`: melody track, ``generate_notes``, the sketch plus the new notes written as
MIDI) must give the recorded note list and the recorded
sha256 of the MIDI bytes in ``tests/ml/golden/continuations.json``. They were written before the
``ml/`` refactor into one framework and protect it.

When a family's sampling is changed on purpose, regenerate its entries (one line, from the repo
root) and say which and why in the commit message::

    PYTHONPATH=$PWD .venv/bin/python -m tests.ml.test_golden_continuations --write [MODEL ...]
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from musicgen_app.core import paths

GOLDEN = Path(__file__).parent / "golden" / "continuations.json"
MODELS = [
    "melody-lstm",
    "char-lstm",
    "chord-lstm",
    "wavenet",
    "pianoroll-lstm",
    "pianoroll-seq2seq",
    "pianoroll-gan",
    "note-transformer",
]
# (sketch, voices): two melodies in the default texture, and a chorale where polyphonic models add voices
SKETCHES = ["folk_tune.mid", "pop_hook.mid", "chorale_opening.mid"]
VOICES = {"chorale_opening.mid": "harmony"}
SEED = 20260101
TEMPERATURE = 0.9
BARS = 2


def continuation(model_name: str, sketch: str) -> dict:
    """The fixed-seed continuation of ``sketch`` by ``model_name``: its notes and MIDI sha256."""
    from musicgen_app.cli.continue_cmd import _melody_track
    from musicgen_app.core.midi_io import midi_bytes, read_midi
    from musicgen_app.ml.generate import SamplingConfig, generate_notes
    from musicgen_app.ml.registry import load_model

    song = read_midi(paths.resources_dir() / "examples" / sketch).song
    track = _melody_track(song, None)
    model = load_model(model_name)
    notes = generate_notes(
        model,
        song,
        track,
        start_tick=song.tracks[track].end_tick,
        bars=BARS,
        sampling=SamplingConfig(temperature=TEMPERATURE, seed=SEED, voices=VOICES.get(sketch, "sketch")),
    )
    tracks = list(song.tracks)
    tracks[track] = replace(tracks[track], notes=sorted([*tracks[track].notes, *notes]))
    data = midi_bytes(replace(song, tracks=tracks))
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "notes": [[n.start_tick, n.pitch, n.end_tick, n.velocity, n.channel] for n in notes],
    }


def _recorded() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.mark.parametrize("sketch", SKETCHES)
@pytest.mark.parametrize("model_name", MODELS)
def test_fixed_seed_continuation_is_unchanged(model_name: str, sketch: str) -> None:
    recorded = _recorded().get(model_name, {}).get(sketch)
    assert recorded is not None, f"no golden for {model_name} / {sketch}: regenerate (see docstring)"
    now = continuation(model_name, sketch)
    assert now["notes"] == recorded["notes"], f"{model_name} continues {sketch} differently"
    assert now["sha256"] == recorded["sha256"], f"{model_name}: same notes, different MIDI bytes"


def main(argv: list[str]) -> int:
    """``--write [MODEL ...]``: record the continuations (all models when none is named)."""
    if not argv or argv[0] != "--write":
        print(__doc__)
        return 2
    names = argv[1:] or MODELS
    golden = _recorded()
    for name in names:
        golden[name] = {sketch: continuation(name, sketch) for sketch in SKETCHES}
        print(f"{name}: " + ", ".join(f"{s} {len(v['notes'])} notes" for s, v in golden[name].items()))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    ordered = {m: golden[m] for m in MODELS if m in golden}
    GOLDEN.write_text(json.dumps(ordered, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
