"""Every shipped checkpoint, damaged in every way the reliability issue found, is refused with a
message and generates nothing; a sound copy still loads and generates.

Each case works on a copy of ``models/NAME.*`` in the test's own directory (the real weights and
card, then one damage). Cases: NaN and inf weights (with a card re-blessed for the damaged file,
so only the NaN/inf check can catch them, and with an older card without a digest), 200 flipped
bytes, a wrong digest, an all-zero file, a relabelled dtype (the safetensors header edited), a
truncated file, and absurd card values (hidden size 200,000, layers -1, text where a dict
belongs), which must be refused before anything is allocated.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from musicgen_app.cli.main import main
from musicgen_app.core import paths
from musicgen_app.core.events import NoteEvent, SessionFinished
from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.song import Note, Song, TimeSignature, Track
from musicgen_app.errors import CheckpointError, GenerationError
from musicgen_app.ml import checkpoint as ckpt
from musicgen_app.ml import checkpoint_verify as cv
from musicgen_app.ml.generate import SamplingConfig, generate_notes
from musicgen_app.ml.registry import list_models, load_model

SHIPPED = [m.name for m in list_models()]
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no shipped models in models/")


def sketch() -> Song:
    pitches = [62, 62, 69, 69, 71, 71, 69, 67, 67, 66, 66, 64, 64, 62]
    notes = [Note(i * 480, p, i * 480 + 440, 90) for i, p in enumerate(pitches)]
    return Song(tracks=[Track(notes=notes)], time_signatures=[TimeSignature(0, 4, 4)])


def copy_model(name: str, directory: Path) -> Path:
    """A copy of a shipped checkpoint; returns its weights path."""
    src = paths.models_dir()
    for ext in (".json", ".safetensors"):
        shutil.copy(src / f"{name}{ext}", directory / f"{name}{ext}")
    return directory / f"{name}.safetensors"


def edit_card(wpath: Path, change) -> None:
    cpath = wpath.with_suffix(".json")
    card = json.loads(cpath.read_text())
    change(card)
    cpath.write_text(json.dumps(card, indent=1))


def rewrite_tensors(wpath: Path, change, *, bless: bool) -> None:
    """Rewrite the weights with ``change(tensors)`` applied; with ``bless`` the card's record is
    made to match the new file (so only the value checks can catch the damage), else it is
    dropped (an older card without a digest)."""
    tensors = load_file(str(wpath))
    change(tensors)
    save_file(tensors, str(wpath), metadata={"format_version": "1"})

    def card_change(card: dict) -> None:
        card.pop("weights", None)
        if bless:
            card["weights"] = cv.weights_record(wpath, tensors)

    edit_card(wpath, card_change)


def poke(value: float):
    def change(tensors: dict[str, torch.Tensor]) -> None:
        k = sorted(tensors)[len(tensors) // 2]
        t = tensors[k].clone()
        t.view(-1)[t.numel() // 2] = value
        tensors[k] = t

    return change


def header(wpath: Path) -> tuple[dict, bytes]:
    data = wpath.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def write_header(wpath: Path, head: dict, body: bytes) -> None:
    raw = json.dumps(head, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    wpath.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def relabel(wpath: Path, dtype: str) -> None:
    """Every F16 tensor relabelled ``dtype``, a 2-byte type (the file parses, the values are
    garbage). I16 is edited in place (the file keeps its size); BF16 rewrites the header."""
    if dtype == "I16":
        wpath.write_bytes(wpath.read_bytes().replace(b'"dtype":"F16"', b'"dtype":"I16"'))
        return
    head, body = header(wpath)
    for k, v in head.items():
        if k != "__metadata__" and v["dtype"] == "F16":
            v["dtype"] = dtype
    write_header(wpath, head, body)


def flip_bytes(wpath: Path, count: int = 200) -> None:
    data = bytearray(wpath.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    rng = random.Random(7)
    for i in rng.sample(range(8 + n, len(data)), count):
        data[i] ^= 0xFF
    wpath.write_bytes(bytes(data))


def refused(wpath: Path, match: str) -> CheckpointError:
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(wpath)
    return info.value


# -- the weights ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_a_sound_copy_loads_and_generates(name: str, tmp_path: Path) -> None:
    model = load_model(copy_model(name, tmp_path))
    notes = generate_notes(model, sketch(), 0, bars=2, sampling=SamplingConfig(seed=3))
    assert notes


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("bless", [True, False], ids=["card-matches-file", "card-without-digest"])
def test_nan_and_inf_weights_are_refused(name: str, value: float, bless: bool, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    rewrite_tensors(wpath, poke(value), bless=bless)
    err = refused(wpath, "invalid numbers")
    assert name in str(err)


@pytest.mark.parametrize("name", SHIPPED)
def test_flipped_bytes_are_refused(name: str, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    flip_bytes(wpath)
    refused(wpath, "does not match its card: it was changed or damaged")


@pytest.mark.parametrize("name", SHIPPED)
def test_a_wrong_digest_is_refused(name: str, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    edit_card(wpath, lambda c: c["weights"].update(sha256="0" * 64))
    refused(wpath, "changed or damaged .its sha256 differs")


@pytest.mark.parametrize("name", SHIPPED)
def test_an_all_zero_file_is_refused(name: str, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    wpath.write_bytes(bytes(wpath.stat().st_size))
    refused(wpath, "changed or damaged .its sha256 differs")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("card", ["with-digest", "tensor-list-only", "older-card"])
@pytest.mark.parametrize("dtype", ["BF16", "I16"])
def test_a_relabelled_dtype_is_refused(name: str, card: str, dtype: str, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    size = wpath.stat().st_size
    relabel(wpath, dtype)
    assert dtype == "BF16" or wpath.stat().st_size == size
    if card == "with-digest":
        refused(wpath, "does not match its card: it was changed or damaged")
        return
    if card == "tensor-list-only":  # the record without its digest: the tensor list catches it
        edit_card(wpath, lambda c: c["weights"].pop("sha256"))
        refused(wpath, rf"is {dtype} \[.*the card says F16")
    else:  # a card written before records existed: its weights_dtype catches it
        edit_card(wpath, lambda c: c.pop("weights"))
        refused(wpath, rf"stored as {dtype}")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("card", ["with-digest", "older-card"])
def test_a_truncated_file_is_refused(name: str, card: str, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    data = wpath.read_bytes()
    wpath.write_bytes(data[: len(data) * 2 // 3])
    if card == "with-digest":
        refused(wpath, "changed or damaged .it is shorter than the card says")
    else:
        edit_card(wpath, lambda c: c.pop("weights"))
        refused(wpath, "corrupt")


@pytest.mark.parametrize("name", SHIPPED)
def test_a_missing_or_extra_tensor_is_refused(name: str, tmp_path: Path) -> None:
    wpath = copy_model(name, tmp_path)
    first = sorted(load_file(str(wpath)))[0]
    rewrite_tensors(wpath, lambda t: t.pop(first), bless=False)
    edit_card(wpath, lambda c: c.update(weights={"tensors": _shipped_record(name)["tensors"]}))
    refused(wpath, f"missing {first}")
    wpath = copy_model(name, tmp_path)
    rewrite_tensors(wpath, lambda t: t.update(extra=torch.zeros(3, dtype=torch.float16)), bless=False)
    edit_card(wpath, lambda c: c.update(weights={"tensors": _shipped_record(name)["tensors"]}))
    refused(wpath, "unexpected extra")


def _shipped_record(name: str) -> dict:
    src = paths.models_dir() / f"{name}.json"
    return json.loads(src.read_text())["weights"]


def test_the_shipped_cards_carry_their_weights_record() -> None:
    for info in list_models():
        record = info.card["weights"]
        digest, size = cv.file_digest(info.path)
        assert (record["sha256"], record["bytes"]) == (digest, size), info.name
        assert record["tensors"] == cv.tensor_record(load_file(str(info.path))), info.name


def test_saving_writes_the_record_and_rehash_is_idempotent(tmp_path: Path) -> None:
    wpath = copy_model(SHIPPED[0], tmp_path)
    assert cv.rehash_cards(tmp_path, load=load_model) == []  # already up to date
    edit_card(wpath, lambda c: c.pop("weights"))
    assert cv.rehash_cards(tmp_path, load=load_model) == [SHIPPED[0]]
    assert json.loads(wpath.with_suffix(".json").read_text())["weights"] == _shipped_record(SHIPPED[0])
    # a damaged file is not blessed
    rewrite_tensors(wpath, poke(float("nan")), bless=False)
    with pytest.raises(CheckpointError, match="invalid numbers"):
        cv.rehash_cards(tmp_path)


# -- the card ---------------------------------------------------------------------------------------------
def _config(card: dict) -> dict:
    arch = card["architecture"]
    return arch["args"] if isinstance(arch, dict) else card["config"]


def _hidden(card: dict) -> None:
    cfg = _config(card)
    key = next(k for k in ("hidden_size", "width", "channels", "d_model", "note_hidden") if k in cfg)
    cfg[key] = 200_000


def _layers(card: dict) -> None:
    cfg = _config(card)
    if "num_layers" in cfg:
        cfg["num_layers"] = -1
    elif "note_layers" in cfg:  # char-lstm's hierarchical model
        cfg["note_layers"] = -1
    elif "dilations" in cfg:
        cfg["dilations"] = [-1]
    else:
        cfg["z_dim"] = -1


def _text_for_dict(card: dict) -> None:
    if isinstance(card["architecture"], dict):
        card["architecture"]["args"] = "hidden_size=256"
    else:
        card["config"] = "hidden_size=256"


def _architecture_text(card: dict) -> None:
    card["architecture"] = 12


def _string_number(card: dict) -> None:
    cfg = _config(card)
    key = next(k for k in ("hidden_size", "width", "channels", "d_model", "note_hidden") if k in cfg)
    cfg[key] = "256"


ABSURD = {
    "hidden-200000": (_hidden, r"asks for (\w+ 200000|a network of [\d,]+ parameters)"),
    "layers-minus-one": (_layers, "accepts 1 to|whole numbers from 1"),
    "text-for-dict": (_text_for_dict, "not a set of named values"),
    "architecture-a-number": (_architecture_text, "architecture is a number"),
    "number-as-text": (_string_number, "as text"),
    "huge-vocabulary": (lambda c: _config(c).update(vocab_size=10**12), "vocab_size"),
}


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("case", list(ABSURD))
def test_absurd_card_values_are_refused_before_anything_is_built(
    name: str, case: str, tmp_path: Path
) -> None:
    change, match = ABSURD[case]
    if case == "huge-vocabulary" and "vocab_size" not in _config(ckpt.read_card(f"models/{name}.json")):
        pytest.skip("this family has no vocabulary size")
    wpath = copy_model(name, tmp_path)
    edit_card(wpath, change)
    t0 = time.perf_counter()
    refused(wpath, match)
    assert time.perf_counter() - t0 < 1.0
    assert list_models(tmp_path) == []  # not offered either


def test_the_parameter_count_from_a_card_is_exact_for_every_shipped_model() -> None:
    for info in list_models():
        arch, config = cv.card_config(info.card, info.name)
        stored = sum(t.numel() for t in load_file(str(info.path)).values())
        assert cv.validate_config(arch, config, info.name) == stored, info.name


def test_a_network_just_over_the_cap_is_refused(tmp_path: Path) -> None:
    wpath = copy_model("melody-lstm" if "melody-lstm" in SHIPPED else SHIPPED[0], tmp_path)

    def big(card: dict) -> None:
        cfg = _config(card)
        cfg["hidden_size" if "hidden_size" in cfg else "width"] = 8192
        if "num_layers" in cfg:
            cfg["num_layers"] = 16

    edit_card(wpath, big)
    refused(wpath, "a network of [\\d,]+ parameters; this app loads at most")


# -- generation -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_non_finite_model_output_stops_generation_before_any_note(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the load-time value check switched off, all-NaN weights reach the sampler: the first
    step refuses them and the take ends with a message and no note."""
    wpath = copy_model(name, tmp_path)
    rewrite_tensors(wpath, lambda ts: [t.fill_(float("nan")) for t in ts.values()], bless=False)
    monkeypatch.setattr(ckpt, "check_tensors", lambda *a: None)
    model = load_model(wpath)
    from musicgen_app.ml.generate import start_session

    events = list(start_session(model, sketch(), 0, bars=2, sampling=SamplingConfig(seed=1)))
    assert not [e for e in events if isinstance(e, NoteEvent)]
    end = events[-1]
    assert isinstance(end, SessionFinished) and end.reason == "error"
    assert "invalid numbers" in end.message
    with pytest.raises(GenerationError, match="invalid numbers"):
        generate_notes(model, sketch(), 0, bars=2, sampling=SamplingConfig(seed=1))


# -- the command line -------------------------------------------------------------------------------------
def test_continue_with_a_refused_checkpoint_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wpath = copy_model(SHIPPED[0], tmp_path)
    flip_bytes(wpath)
    seed = tmp_path / "seed.mid"
    write_midi(sketch(), seed)
    out = tmp_path / "out.mid"
    code = main(["continue", str(seed), "-o", str(out), "--model", str(wpath), "--seed", "1"])
    stdout, err = capsys.readouterr()
    assert code == 2 and "wrote" not in stdout
    assert err.count("\n") == 1 and err.startswith("error: ") and "changed or damaged" in err
    assert "Traceback" not in err and not out.exists()


def test_models_reports_each_refused_checkpoint_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = SHIPPED[0], SHIPPED[-1]
    copy_model(good, tmp_path)
    rewrite_tensors(copy_model(bad, tmp_path), poke(float("nan")), bless=True)
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tmp_path))
    code = main(["models"])
    stdout, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: model {bad}") and "invalid numbers" in err
    assert good in stdout and bad not in stdout
