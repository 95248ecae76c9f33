"""The benchmark scripts still run: a broken bench is found here, not when the README is re-measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_generation_runs_for_a_grid_model_and_the_transformer() -> None:
    """bench_generation reaches every figure (window re-reading too) for melody-lstm and the default."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_generation.py"), "--models", "melody-lstm",
           "note-transformer", "--repeats", "1", "--bars", "2"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "melody-lstm: first note" in out.stdout
    assert "note-transformer: first note" in out.stdout
