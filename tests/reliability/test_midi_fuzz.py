"""Fuzzing in CI: a few thousand mutated MIDI files are each imported as a sound song or refused
with MidiImportError; nothing else escapes read_midi and nothing hangs (pytest-timeout).

The large run (100,000 mutants, counts per outcome, worst time and memory) is
``benchmarks/bench_fuzz.py``.
"""

from __future__ import annotations

import random
import re

import pytest
from core.samples import EOT, smf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicgen_app.core.midi_io import read_midi
from musicgen_app.errors import MidiImportError

from .fuzz import check, mutate, readers_agree, seeds

MUTATED_FILES = 4_000  # about 3 s here; the benchmark runs 100,000


@pytest.mark.timeout(120)
def test_thousands_of_mutated_files() -> None:
    rng = random.Random(20261121)
    files = seeds()
    imported = compared = 0
    repaired: set[str] = set()
    for _ in range(MUTATED_FILES):
        data = mutate(rng.choice(files), rng)
        try:
            ok = check(data)
        except (AssertionError, MidiImportError):
            raise
        except Exception as exc:  # the point of the test: name the input that broke the reader
            raise AssertionError(f"read_midi raised {type(exc).__name__}: {exc} on {data[:200]!r}") from exc
        imported += ok
        compared += readers_agree(data)
        if ok:
            repaired.update(re.sub(r"\d[\d,]*", "N", line) for line in read_midi(data).repairs)
    refused = MUTATED_FILES - imported
    # the mutations exercise both outcomes
    assert imported > MUTATED_FILES // 4 and refused > 0, (imported, refused)
    assert len(repaired) > 30, repaired  # and many different kinds of repair
    assert compared > 500  # and the two readers were compared on many tracks


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(0, 4), st.integers(0, 0xFFFF))
def test_random_track_bytes_behind_a_valid_header(body: bytes, fmt: int, division: int) -> None:
    check(smf(body, fmt=fmt, division=division))
    check(smf(body + EOT, body, fmt=fmt, division=division))
