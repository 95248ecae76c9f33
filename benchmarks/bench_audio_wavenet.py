"""Real-time factor of the raw-audio WaveNet (paper 004): fast generation against the full forward.

For the shipped ``audio-wavenet`` (or ``--model``), one thread:

* **fast**: per-layer queues (:class:`FastAudioWaveNet`), ``--seconds`` of audio sample by sample,
  sampling included: wall time / audio time (the real-time factor; below 1 is faster than real time);
* **per sample**: the same in microseconds;
* **naive**: what re-running the network over one receptive field per sample would cost (timed
  over 200 samples), the generation the queues avoid.

Figures depend on the machine's load; the 1-minute load average is printed with them.
Run: ``.venv/bin/python benchmarks/bench_audio_wavenet.py [--seconds 2]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from musicgen_app.ml.audio import raw_wavenet as rw
from musicgen_app.ml.registry import load_model


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="audio-wavenet")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = rw.as_audio_wavenet(load_model(args.model), args.model)
    fast = rw.real_time_factor(model, args.seconds)
    rate = model.sample_rate
    print(f"load {os.getloadavg()[0]:.1f}; {args.model} at {rate} Hz, one thread")
    print(
        f"fast generation: {fast['wall_seconds']:.2f} s for {args.seconds:g} s of audio, real-time factor "
        f"{fast['real_time_factor']:.2f}, {1e6 * fast['wall_seconds'] / (args.seconds * rate):.0f} us/sample"
    )
    net, rf = model.network, model.network.cfg.receptive_field
    x = torch.from_numpy(np.full((1, rf), rw.SILENCE))
    roll = torch.zeros(1, rf // net.cfg.hop + 2, net.cfg.cond_dim)
    n = 200
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(n):
            net(x, roll)
    per = (time.perf_counter() - t0) / n
    print(
        f"naive (full forward over {rf} samples per new sample): {1e6 * per:.0f} us/sample, "
        f"real-time factor {per * rate:.1f}"
    )


if __name__ == "__main__":
    main()
