"""Training under PyTorch's own launcher: `torchrun --standalone --nproc_per_node 2 -m musicgen_app
train ...` with gloo on the CPU reaches the validation NLL of one process with the same global
batch (within 2%), and only rank 0 writes the checkpoint, card and curve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import Note, Song, Track

pytestmark = pytest.mark.slow


def _folder(root: Path, n: int = 16) -> Path:
    rng = np.random.default_rng(11)
    root.mkdir(parents=True)
    for i in range(n):
        scale = [0, 2, 4, 5, 7, 9, 11, 12]
        pitches = [int(60 + rng.choice(scale)) for _ in range(64)]
        notes = [Note(k * 240, p, k * 240 + 240, 90) for k, p in enumerate(pitches)]
        write_midi(Song(tracks=[Track(name="melody", notes=notes)]), root / f"t{i:02d}.mid")
    return root


def _train(tmp_path: Path, out: str, launcher: list[str], env: dict[str, str]) -> dict:
    args = [
        "train",
        "melody-lstm",
        "--data",
        "tinyset",
        "--name",
        "tiny",
        "--out-dir",
        str(tmp_path / out),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--seq-len",
        "32",
        "--hidden",
        "24",
        "--layers",
        "1",
        "--dropout",
        "0",
        "--lr",
        "0.01",
        "--no-evaluate",
        "--seed",
        "4",
    ]
    proc = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / out / "tiny.json").read_text())


def test_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    env = {
        **os.environ,
        "MUSICGEN_CACHE_DIR": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    folder = _folder(tmp_path / "music")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "musicgen_app",
            "dataset",
            "build",
            "--midi",
            str(folder),
            "--name",
            "tinyset",
            "--workers",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    one = _train(tmp_path, "one", [sys.executable, "-m", "musicgen_app"], env)
    two = _train(
        tmp_path, "two", [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "musicgen_app"], env
    )
    assert two["training"]["ranks"] == 2 and one["training"]["ranks"] == 1
    a, b = one["training"]["best_valid_nll"], two["training"]["best_valid_nll"]
    assert abs(a - b) / a < 0.02, (a, b)
    # both learned something: the last epoch is below the first epoch's training loss
    assert b < two["training"]["history"][0]["train_nll"]
    written = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert written == ["tiny-curve.png", "tiny.json", "tiny.safetensors"]
