"""Every subcommand over a table of bad values: exit 2, one line on stderr, nothing written.

Each row is a real `musicgen` command line with one bad value (an out-of-range or non-finite
number, a reversed range, a missing, device, FIFO or folder path, an empty name...). The whole table
runs in-process through ``main(argv)`` (validation happens before any heavy import, so a row costs
milliseconds) and a sample of it runs as subprocesses of the installed `musicgen` console script.
For each row: exit status 2, exactly one non-empty line on stderr starting with ``error:`` and
naming the problem, no "Traceback", no "Exception ignored", nothing created in the work folder, and
/dev/null still a device.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from musicgen_app.cli.main import main
from musicgen_app.core.midi_io import write_midi
from musicgen_app.core.project import Project, save_project
from musicgen_app.core.song import Note, Song, Track

# (argv with {placeholders}, a fragment the one error line must contain)
ROWS: list[tuple[str, ...]] = [
    # the dispatcher
    ("bogus-command", "invalid choice"),
    ("--no-such-option", "unrecognized arguments"),
    ("{missing}", "invalid choice"),
    # gui
    ("gui {missing}", "does not exist"),
    ("gui {dir}", "is a folder"),
    ("gui /dev/zero", "is a character device"),
    ("gui {fifo}", "pipe"),
    ("gui --device=", "must not be empty"),
    ("gui --output=", "must not be empty"),
    ("gui --bogus", "unrecognized arguments"),
    # inspect
    ("inspect", "required: FILE"),
    ("inspect {missing}", "does not exist"),
    ("inspect {dir}", "is a folder"),
    ("inspect /dev/zero", "is a character device"),
    ("inspect {urandom_link}", "is a character device"),
    ("inspect {fifo}", "pipe"),
    ("inspect ''", "must not be empty"),
    ("inspect {mid} --bogus", "unrecognized arguments"),
    ("inspect {mid} --json=yes", "ignored explicit argument"),
    # convert
    ("convert {mid}", "required: OUT"),
    ("convert {missing} {out_mid}", "does not exist"),
    ("convert /dev/zero {out_mid}", "is a character device"),
    ("convert {fifo} {out_mid}", "pipe"),
    ("convert '' {out_mid}", "must not be empty"),
    ("convert {mid} {out_txt}", "name the output file"),
    ("convert {mid} ''", "must not be empty"),
    ("convert {mid} /nonexistent/x.mid", "does not exist"),
    ("convert {mid} {null_link_mid}", "is a character device"),
    ("convert {mid} {fifo_mid}", "pipe"),
    ("convert {mid} {dir_mid}", "is a folder"),
    ("convert {mid} {tmp}/", "name the output file"),
    # continue
    ("continue {mid}", "required: -o/--output"),
    ("continue {missing} -o {out_mid}", "does not exist"),
    ("continue {dir} -o {out_mid}", "is a folder"),
    ("continue /dev/zero -o {out_mid}", "is a character device"),
    ("continue {mid} -o {out_txt}", "name the MIDI file .mid"),
    ("continue {mid} -o {out_mid} --chords 'C H7'", "'H7' is not a chord"),
    ("continue {mid} -o {out_mid} --chords ''", "progression is empty"),
    ("continue {mid} -o /nonexistent/x.mid", "does not exist"),
    ("continue {mid} -o {null_link_mid}", "is a character device"),
    ("continue {mid} -o {fifo_mid}", "pipe"),
    ("continue {mid} -o {dir_mid}", "is a folder"),
    ("continue {mid} -o {out_mid} --model=", "--model: the model name must not be empty"),
    ("continue {mid} -o {out_mid} --model='   '", "--model: the model name must not be empty"),
    ("continue {mid} -o {out_mid} --model='a\nb'", "control characters"),
    ("continue {mid} -o {out_mid} --temperature 0", "--temperature: 0 is out of range"),
    ("continue {mid} -o {out_mid} --temperature -1", "--temperature"),
    ("continue {mid} -o {out_mid} --temperature nan", "finite"),
    ("continue {mid} -o {out_mid} --temperature inf", "finite"),
    ("continue {mid} -o {out_mid} --temperature warm", "expected a number"),
    ("continue {mid} -o {out_mid} --temperature 1e9", "out of range"),
    ("continue {mid} -o {out_mid} --bars 0", "--bars: 0 is out of range"),
    ("continue {mid} -o {out_mid} --bars -3", "--bars"),
    ("continue {mid} -o {out_mid} --bars 257", "--bars"),
    ("continue {mid} -o {out_mid} --bars 2.5", "whole number"),
    ("continue {mid} -o {out_mid} --bars four", "whole number"),
    ("continue {mid} -o {out_mid} --seed -1", "--seed: -1 is out of range"),
    ("continue {mid} -o {out_mid} --seed 9223372036854775808", "--seed"),
    ("continue {mid} -o {out_mid} --seed 1.5", "whole number"),
    ("continue {mid} -o {out_mid} --seed 99999999999999999999999999999999999", "whole number"),
    ("continue {mid} -o {out_mid} --key='H moll'", "not a key name"),
    ("continue {mid} -o {out_mid} --key=", "not a key name"),
    ("continue {mid} -o {out_mid} --key='C superlocrian'", "unknown mode"),
    ("continue {mid} -o {out_mid} --variations 0", "--variations"),
    ("continue {mid} -o {out_mid} --variations 101", "--variations"),
    ("continue {mid} -o {out_mid} --track 0", "--track"),
    ("continue {mid} -o {out_mid} --track -1", "--track"),
    ("continue {mid} -o {out_mid} --top-k -1", "--top-k"),
    ("continue {mid} -o {out_mid} --top-k many", "whole number"),
    ("continue {mid} -o {out_mid} --top-p 0", "--top-p"),
    ("continue {mid} -o {out_mid} --top-p 1.5", "--top-p"),
    ("continue {mid} -o {out_mid} --top-p nan", "finite"),
    ("continue {mid} -o {out_mid} --play --device=", "must not be empty"),
    ("continue {mid} -o {out_mid} --play --output-device=", "must not be empty"),
    ("continue {mid} -o {out_mid} --play --soundfont {missing}", "does not exist"),
    ("continue {mid} -o {out_mid} --play --soundfont /dev/zero", "is a character device"),
    ("continue {mid} -o {out_mid} --play --soundfont {dir}", "is a folder"),
    ("continue {mid} -o {out_mid} --play --midi-api coreaudio", "invalid choice"),
    ("continue {mid} -o {out_mid} --play yes", "unrecognized arguments"),
    # accompany
    ("accompany {mid}", "required: -o/--output"),
    ("accompany {missing} -o {out_mid}", "does not exist"),
    ("accompany {mid} -o {out_txt}", "name the MIDI file .mid"),
    ("accompany {mid} -o {out_mid} --style jazz", "invalid choice: 'jazz'"),
    ("accompany {mid} -o {out_mid} --chords Hm", "'Hm' is not a chord"),
    ("accompany {mid} -o {out_mid} --chords C:foo", "is not a chord quality we know"),
    ("accompany {mid} -o {out_mid} --temperature nan", "--temperature"),
    ("accompany {mid} -o {out_mid} --track 0", "--track: 0 is out of range"),
    ("accompany {mid} -o {out_mid} --track 4", "the song has no track 4 (it has 1)"),
    # fill
    ("fill {mid} --bars 1-2", "required: -o/--output"),
    ("fill {mid} -o {out_mid}", "one of the arguments --bars --ticks is required"),
    ("fill {missing} -o {out_mid} --bars 1-2", "does not exist"),
    ("fill {dir} -o {out_mid} --bars 1-2", "is a folder"),
    ("fill {mid} -o {out_txt} --bars 1-2", "name the MIDI file .mid"),
    ("fill {mid} -o {fifo_mid} --bars 1-2", "pipe"),
    ("fill {mid} -o {out_mid} --bars 5-2", "--bars: the range 5-2 is reversed"),
    ("fill {mid} -o {out_mid} --bars 0-2", "--bars: bars are counted from 1"),
    ("fill {mid} -o {out_mid} --bars two", "expected a bar range"),
    ("fill {mid} -o {out_mid} --bars 1-2 --ticks 0-480", "not allowed with argument"),
    ("fill {mid} -o {out_mid} --bars 2-99", "bars 2-99 run past the end of the song (it has 2 bars)"),
    ("fill {mid} -o {out_mid} --bars 3", "bars 3-3 run past the end of the song"),
    ("fill {mid} -o {out_mid} --ticks 480-480", "the tick range 480-480 is empty"),
    ("fill {mid} -o {out_mid} --ticks 9000-9600", "tick 9000 is past the end of the song"),
    ("fill {mid} -o {out_mid} --ticks=-5-10", "expected a tick range"),
    ("fill {mid} -o {out_mid} --bars 1-2 --track 0", "--track: 0 is out of range"),
    ("fill {mid} -o {out_mid} --bars 1-2 --track 4", "the song has no track 4 (it has 1)"),
    ("fill {mid} -o {out_mid} --bars 1-2 --candidates 0", "--candidates: 0 is out of range"),
    ("fill {mid} -o {out_mid} --bars 1-2 --candidates 65", "--candidates"),
    ("fill {mid} -o {out_mid} --bars 1-2 --edges trim", "invalid choice"),
    ("fill {mid} -o {out_mid} --bars 1-2 --temperature 0", "--temperature: 0 is out of range"),
    ("fill {mid} -o {out_mid} --bars 1-2 --seed -1", "--seed: -1 is out of range"),
    ("fill {mid} -o {out_mid} --bars 1-2 --key='H moll'", "not a key name"),
    ("fill {mid} -o {out_mid} --bars 1-2 --model=", "--model: the model name must not be empty"),
    # jam
    ("jam", "required: --input"),
    ("jam --input=", "the input port must not be empty"),
    ("jam --input kb --output=", "the output must not be empty"),
    ("jam --input kb --bars 0", "--bars: 0 is out of range"),
    ("jam --input kb --bars 17", "--bars"),
    ("jam --input kb --silence-ms 10", "--silence-ms: 10 is out of range"),
    ("jam --input kb --silence-ms nan", "finite"),
    ("jam --input kb --tempo 0", "--tempo: 0 is out of range"),
    ("jam --input kb --metronome --beats 0", "--beats: 0 is out of range"),
    ("jam --input kb --metronome --beats 17", "--beats"),
    ("jam --input kb --temperature 0", "--temperature"),
    ("jam --input kb --exchanges 0", "--exchanges"),
    ("jam --input kb --seed -1", "--seed"),
    ("jam --input kb -o {out_txt}", "name the MIDI file .mid"),
    ("jam --input kb -o {dir_mid}", "is a folder"),
    ("jam --input kb --midi-api bogus", "invalid choice"),
    ("jam --input kb --model=", "--model: the model name must not be empty"),
    # models
    ("models --bogus", "unrecognized arguments"),
    ("models --json extra", "unrecognized arguments"),
    # evaluate
    ("evaluate ''", "the model name must not be empty"),
    ("evaluate melody-lstm --tunes 0", "--tunes"),
    ("evaluate melody-lstm --tunes -5", "--tunes"),
    ("evaluate melody-lstm --tunes x", "whole number"),
    ("evaluate", "name a model to evaluate"),
    # train
    ("train", "required: model"),
    ("train bogus-model", "invalid choice"),
    ("train melody-lstm --name=", "cannot name a checkpoint"),
    ("train melody-lstm --name ../evil", "cannot name a checkpoint"),
    ("train melody-lstm --name a/b", "cannot name a checkpoint"),
    ("train melody-lstm --corpus bogus", "invalid choice"),
    ("train melody-lstm --epochs 0", "--epochs"),
    ("train melody-lstm --epochs -1", "--epochs"),
    ("train melody-lstm --batch-size 0", "--batch-size: 0 is out of range"),
    ("train melody-lstm --batch-size 1e3", "whole number"),
    ("train melody-lstm --seq-len 1", "--seq-len"),
    ("train melody-lstm --seq-len 0", "--seq-len"),
    ("train melody-lstm --lr 0", "--lr"),
    ("train melody-lstm --lr nan", "--lr: expected a finite number"),
    ("train melody-lstm --lr -0.1", "--lr"),
    ("train melody-lstm --lr inf", "finite"),
    ("train melody-lstm --patience 0", "--patience"),
    ("train melody-lstm --minutes 0", "--minutes"),
    ("train melody-lstm --minutes nan", "finite"),
    ("train melody-lstm --minutes -1", "--minutes"),
    ("train melody-lstm --threads 0", "--threads"),
    ("train melody-lstm --hidden -5", "--hidden: -5 is out of range"),
    ("train melody-lstm --hidden 0", "--hidden"),
    ("train melody-lstm --hidden 200000", "--hidden"),
    ("train melody-lstm --layers 0", "--layers"),
    ("train melody-lstm --layers 100", "--layers"),
    ("train melody-lstm --dropout 1", "--dropout"),
    ("train melody-lstm --dropout -0.1", "--dropout"),
    ("train melody-lstm --dropout nan", "finite"),
    ("train melody-lstm --limit-tunes -1", "--limit-tunes"),
    ("train melody-lstm --out-dir /dev/null", "--out-dir: /dev/null is a character device, not a folder"),
    ("train melody-lstm --out-dir {mid}/sub", "not a folder"),
    ("train melody-lstm --out-dir {mid}", "not a folder"),
    ("train melody-lstm --out-dir=", "must not be empty"),
    ("train melody-lstm --seed -1", "--seed"),
    ("train melody-lstm --resume {missing}", "does not exist"),
    ("train melody-lstm --resume /dev/zero", "is a character device"),
    # the loop's options are for training on --data; a family's recipe on its own corpus takes none
    ("train wavenet --epochs 3", "--epochs: not for `musicgen train wavenet` on its own corpus"),
    # a bare --resume (the shipped weights) gets past parsing: the error is the --epochs one
    ("train wavenet --resume --epochs 3", "--epochs: not for `musicgen train wavenet` on its own"),
    ("train char-lstm --lr 0.01 --hidden 64", "--hidden, --lr: not for"),
    ("train char-lstm --data x --hidden 64", "--hidden: not for `musicgen train char-lstm` with --data"),
    ("train chord-lstm --from melody-lstm", "--from: not for `musicgen train chord-lstm` on its own"),
    # dataset
    ("dataset", "required: action"),
    ("dataset bogus", "invalid choice"),
    ("dataset build --limit 0", "--limit: 0 is out of range"),
    ("dataset build --limit -1", "--limit"),
    ("dataset build --limit x", "whole number"),
    ("dataset build --corpus bogus", "invalid choice"),
    # play
    ("play", "required: FILE"),
    ("play {missing}", "does not exist"),
    ("play /dev/zero", "is a character device"),
    ("play {fifo}", "pipe"),
    ("play {mid} --device=", "must not be empty"),
    ("play {mid} --output=", "must not be empty"),
    ("play {mid} --soundfont {missing}", "does not exist"),
    ("play {mid} --soundfont {fifo}", "pipe"),
    ("play {mid} --midi-api bogus", "invalid choice"),
    ("play {mid} --audio-driver=", "must not be empty"),
    ("play {mid} --buffer-size 0", "--buffer-size"),
    ("play {mid} --buffer-size 1", "--buffer-size"),
    ("play {mid} --buffer-size 100000", "--buffer-size"),
    ("play {mid} --buffer-count 0", "--buffer-count"),
    ("play {mid} --buffer-count 1", "--buffer-count"),
    ("play {mid} --buffer-count 1000", "--buffer-count"),
    ("play {mid} --start inf", "--start: expected a finite number"),
    ("play {mid} --start nan", "finite"),
    ("play {mid} --start -1", "--start"),
    ("play {mid} --start soon", "expected a number"),
    ("play {mid} --loop 5-2", "reversed"),
    ("play {mid} --loop=", "bar range"),
    ("play {mid} --loop 0-2", "counted from 1"),
    ("play {mid} --loop a-b", "bar range"),
    ("play {mid} --loop 3-", "bar range"),
    ("play {mid} --loop 50-60", "the song has only 2 bars"),
    ("play {reversed_loop} --loop", "loop"),
    ("play {empty_loop} --loop", "loop"),
    # render
    ("render {mid}", "required: -o/--output"),
    ("render {missing} -o {out_wav}", "does not exist"),
    ("render /dev/zero -o {out_wav}", "is a character device"),
    ("render {mid} -o {out_mid}", "name the WAV file .wav"),
    ("render {mid} -o /nonexistent/x.wav", "the folder /nonexistent does not exist"),
    ("render {mid} -o {null_link_wav}", "is a character device"),
    ("render {mid} -o {dir_wav}", "is a folder"),
    ("render {mid} -o {fifo_wav}", "pipe"),
    ("render {mid} -o {out_wav} --sample-rate 0", "--sample-rate: 0 is out of range"),
    ("render {mid} -o {out_wav} --sample-rate -44100", "--sample-rate"),
    ("render {mid} -o {out_wav} --sample-rate 1000000", "--sample-rate"),
    ("render {mid} -o {out_wav} --sample-rate 44.1", "whole number"),
    ("render {mid} -o {out_wav} --tail nan", "--tail: expected a finite number"),
    ("render {mid} -o {out_wav} --tail inf", "finite"),
    ("render {mid} -o {out_wav} --tail 1e9", "--tail"),
    ("render {mid} -o {out_wav} --tail -100", "--tail: -100 is out of range"),
    ("render {mid} -o {out_wav} --tail long", "expected a number"),
    ("render {mid} -o {out_wav} --soundfont {missing}", "does not exist"),
    ("render {mid} -o {out_wav} --soundfont {dir}", "is a folder"),
    ("render {mid} -o {out_wav} --peak-db 3", "--peak-db"),
    ("render {mid} -o {out_wav} --peak-db nan", "finite"),
    ("render {mid} -o {out_wav} --peak-db -1000", "--peak-db"),
    # audio restyle, dataset, train, evaluate (paper 002's style autoencoder)
    ("audio restyle", "required: IN.wav"),
    ("audio restyle {readonly_file_wav}", "required: -o/--output"),
    ("audio restyle {missing} -o {out_wav}", "does not exist"),
    ("audio restyle /dev/zero -o {out_wav}", "device"),
    ("audio restyle {dir} -o {out_wav}", "is a folder"),
    ("audio restyle {fifo_wav} -o {out_wav}", "pipe"),
    ("audio restyle {mid} -o {out_wav}", "is a MIDI file; this app reads WAV recordings"),
    ("audio restyle {readonly_file_wav} -o {out_wav}", "is empty"),
    ("audio restyle {readonly_file_wav} -o {out_mid}", "name the WAV file .wav"),
    ("audio restyle {readonly_file_wav} -o {null_link_wav}", "device"),
    ("audio restyle {readonly_file_wav} -o {dir_wav}", "is a folder"),
    ("audio restyle {readonly_file_wav} -o /nonexistent/x.wav", "does not exist"),
    ("audio restyle {readonly_file_wav} -o {out_wav} --to guitar", "invalid choice"),
    ("audio restyle {readonly_file_wav} -o {out_wav} --model=", "must not be empty"),
    ("audio dataset", "required: what"),
    ("audio dataset build --pieces 1", "--pieces: 1 is out of range"),
    ("audio dataset build --pieces many", "whole number"),
    ("audio dataset build --sample-rate 44100", "not one of 8000, 16000"),
    ("audio dataset info --sample-rate 16k", "whole number"),
    ("audio dataset info", "not built yet"),
    ("audio train --layout spiral", "invalid choice"),
    ("audio train --minutes 0", "--minutes"),
    ("audio train --minutes nan", "finite"),
    ("audio train --threads 0", "--threads"),
    ("audio train --name ../evil", "cannot name a checkpoint"),
    ("audio train --seed -1", "--seed"),
    ("audio train --lr 0", "--lr"),
    ("audio train --variant skip", "invalid choice"),
    ("audio train --paired 1.5", "--paired"),
    ("audio train --paired nan", "finite"),
    ("audio train --lr inf", "finite"),
    ("audio evaluate --model=", "must not be empty"),
    ("audio evaluate --limit 0", "--limit"),
    # audio continue / wavenet (paper 004's raw-audio WaveNet)
    ("audio continue {mid}", "required: -o/--output"),
    ("audio continue {missing} -o {out_wav}", "does not exist"),
    ("audio continue /dev/zero -o {out_wav}", "is a character device"),
    ("audio continue {dir} -o {out_wav}", "is a folder"),
    ("audio continue {mid} -o {out_mid}", "name the WAV file .wav"),
    ("audio continue {mid} -o {out_wav} --seconds 0", "--seconds"),
    ("audio continue {mid} -o {out_wav} --seconds nan", "finite"),
    ("audio continue {mid} -o {out_wav} --seconds 1e9", "--seconds"),
    ("audio continue {mid} -o {out_wav} --temperature 0", "--temperature"),
    ("audio continue {mid} -o {out_wav} --model=", "must not be empty"),
    ("audio continue {readonly_file_wav} -o {out_wav}", "is empty"),
    ("audio wavenet", "required: WHAT"),
    ("audio wavenet train --minutes -1", "--minutes"),
    ("audio wavenet train --name ../evil", "cannot name a checkpoint"),
    ("audio wavenet train --sample-rate 44100", "not one of 8000, 16000"),
    ("audio wavenet evaluate --model=", "must not be empty"),
    # devices
    ("devices --midi-api bogus", "invalid choice"),
    ("devices --json extra", "unrecognized arguments"),
    # audio transcribe
    ("audio", "required: ACTION"),
    ("audio bogus", "invalid choice"),
    ("audio transcribe", "required: IN.wav"),
    ("audio transcribe {mid}", "required: -o/--output"),
    ("audio transcribe {missing} -o {out_mid}", "does not exist"),
    ("audio transcribe {dir} -o {out_mid}", "is a folder"),
    ("audio transcribe /dev/zero -o {out_mid}", "is a character device"),
    ("audio transcribe {urandom_link} -o {out_mid}", "is a character device"),
    ("audio transcribe {fifo} -o {out_mid}", "pipe"),
    ("audio transcribe '' -o {out_mid}", "must not be empty"),
    ("audio transcribe {mid} -o {out_mid}", "is a MIDI file; this app reads WAV recordings"),
    ("audio transcribe {not_wav} -o {out_mid}", "is not a WAV file"),
    ("audio transcribe {mp3} -o {out_mid}", "is an MP3 file"),
    ("audio transcribe {mid} -o {out_wav}", "name the MIDI file .mid"),
    ("audio transcribe {mid} -o /nonexistent/x.mid", "does not exist"),
    ("audio transcribe {mid} -o {null_link_mid}", "is a character device"),
    ("audio transcribe {mid} -o {fifo_mid}", "pipe"),
    ("audio transcribe {mid} -o {dir_mid}", "is a folder"),
    ("audio transcribe {mid} -o {out_mid} --quantize 1/7", "--quantize: '1/7' is not a grid"),
    ("audio transcribe {mid} -o {out_mid} --quantize=", "is not a grid"),
    ("audio transcribe {mid} -o {out_mid} --bpm 0", "--bpm: 0 is out of range"),
    ("audio transcribe {mid} -o {out_mid} --bpm nan", "finite"),
    ("audio transcribe {mid} -o {out_mid} --bpm fast", "expected a number"),
    ("audio transcribe {mid} -o {out_mid} --onset-threshold 1", "--onset-threshold"),
    ("audio transcribe {mid} -o {out_mid} --onset-threshold 0", "--onset-threshold"),
    ("audio transcribe {mid} -o {out_mid} --frame-threshold -0.5", "--frame-threshold"),
    ("audio transcribe {mid} -o {out_mid} --min-note-ms 5", "--min-note-ms"),
    ("audio transcribe {mid} -o {out_mid} --min-note-ms inf", "finite"),
    ("audio transcribe {mid} -o {out_mid} --program 128", "--program: 128 is out of range"),
    ("audio transcribe {mid} -o {out_mid} --program piano", "whole number"),
]

# rows that only a user without root's rights can see refused
PERMISSION_ROWS: list[tuple[str, ...]] = [
    ("inspect {unreadable}", "cannot be read"),
    ("convert {mid} {readonly_dir}/x.mid", "cannot write into the folder"),
    ("render {mid} -o {readonly_file_wav}", "read-only"),
    ("train melody-lstm --out-dir {readonly_dir}", "cannot write into the folder"),
]

# a sample of the table, run through the installed console script (one process each)
SUBPROCESS_SAMPLE = [
    "continue {mid} -o {out_mid} --seed -1",
    "continue {mid} -o {out_mid} --model=",
    "fill {mid} -o {out_mid} --bars 2-99",
    "render {mid} -o {out_wav} --sample-rate 0",
    "render {mid} -o {out_wav} --tail nan",
    "render {mid} -o {out_wav} --tail -100",
    "render {mid} -o /nonexistent/x.wav",
    "render {mid} -o {null_link_wav}",
    "play {mid} --start inf",
    "play {mid} --loop 5-2",
    "play {empty_loop} --loop",
    "train melody-lstm --batch-size 0",
    "train melody-lstm --lr nan",
    "train melody-lstm --out-dir /dev/null",
    "dataset build --limit 0",
    "audio restyle {mid} -o {out_wav}",
    "audio dataset build --sample-rate 44100",
    "gui {missing}",
    "bogus-command",
    "audio transcribe {mid} -o {out_mid}",
    "audio transcribe {mid} -o {out_mid} --quantize 1/7",
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The files the rows name: a good MIDI file, projects with a bad loop, a FIFO, links to devices."""
    tmp = tmp_path_factory.mktemp("bad_values")
    song = Song(tracks=[Track(notes=[Note(i * 480, 60 + i, i * 480 + 400, 90) for i in range(8)])])
    write_midi(song, tmp / "good.mid")
    for name, loop in (("reversed", (960, 0)), ("empty", (480, 480))):
        save_project(Project(Song(tracks=song.tracks, loop=loop), {}), tmp / f"{name}-loop.mgproj")
    (tmp / "dir").mkdir()
    (tmp / "folder.mid").mkdir()
    (tmp / "folder.wav").mkdir()
    for name in ("fifo", "fifo.mid", "fifo.wav"):
        os.mkfifo(tmp / name)
    (tmp / "null.mid").symlink_to("/dev/null")
    (tmp / "null.wav").symlink_to("/dev/null")
    (tmp / "urandom.mid").symlink_to("/dev/urandom")
    (tmp / "notes.wav").write_text("not a recording\n")
    (tmp / "song.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64))
    (tmp / "unreadable.mid").write_bytes((tmp / "good.mid").read_bytes())
    (tmp / "unreadable.mid").chmod(0)
    (tmp / "readonly").mkdir()
    (tmp / "readonly.wav").write_bytes(b"")
    (tmp / "readonly.wav").chmod(0o444)
    (tmp / "readonly").chmod(0o555)
    names = {
        "tmp": tmp,
        "mid": tmp / "good.mid",
        "missing": tmp / "missing.mid",
        "dir": tmp / "dir",
        "dir_mid": tmp / "folder.mid",
        "dir_wav": tmp / "folder.wav",
        "fifo": tmp / "fifo",
        "fifo_mid": tmp / "fifo.mid",
        "fifo_wav": tmp / "fifo.wav",
        "null_link_mid": tmp / "null.mid",
        "null_link_wav": tmp / "null.wav",
        "urandom_link": tmp / "urandom.mid",
        "not_wav": tmp / "notes.wav",
        "mp3": tmp / "song.mp3",
        "unreadable": tmp / "unreadable.mid",
        "readonly_dir": tmp / "readonly",
        "readonly_file_wav": tmp / "readonly.wav",
        "out_mid": tmp / "out.mid",
        "out_txt": tmp / "out.txt",
        "out_wav": tmp / "out.wav",
        "reversed_loop": tmp / "reversed-loop.mgproj",
        "empty_loop": tmp / "empty-loop.mgproj",
    }
    yield {k: str(v) for k, v in names.items()}
    (tmp / "readonly").chmod(0o755)


def argv(row: str, work: dict[str, str]) -> list[str]:
    """The row's arguments, split as a shell would, with the work files filled in."""
    return [a.format(**work) for a in shlex.split(row)]


def snapshot(folder: str) -> set[str]:
    return set(os.listdir(folder))


def check_refusal(code: int, err: str, expected: str, row: str) -> None:
    lines = err.splitlines()
    assert code == 2, (row, code, err)
    assert len(lines) == 1 and lines[0].strip(), (row, err)
    assert lines[0].startswith("error: "), (row, err)
    assert expected in lines[0], (row, expected, err)
    assert "Traceback" not in err and "Exception ignored" not in err, (row, err)
    assert "internal error" not in err, (row, err)


def test_the_table_covers_every_subcommand() -> None:
    from musicgen_app.cli.main import COMMANDS

    assert len(ROWS) >= 120
    for name in COMMANDS:
        assert any(r[0].split(" ")[0] == name for r in ROWS), name


def test_every_bad_value_is_one_line_and_exit_2(
    work: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSICGEN_CACHE_DIR", work["tmp"])  # `dataset` never reads the real cache
    rows = list(ROWS)
    if os.geteuid() != 0:  # root may read and write anything
        rows += PERMISSION_ROWS
    before = snapshot(work["tmp"])
    slowest = (0.0, "")
    for row, expected in rows:
        t0 = time.perf_counter()
        code = main(argv(row, work))
        slowest = max(slowest, (time.perf_counter() - t0, row))
        check_refusal(code, capsys.readouterr().err, expected, row)
        assert snapshot(work["tmp"]) == before, (row, snapshot(work["tmp"]) - before)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    print(f"\n{len(rows)} bad invocations in-process; slowest {slowest[0] * 1000:.0f} ms: {slowest[1]}")
    assert slowest[0] < 2.0, slowest  # a guard against a collapse (torch imported before validating)


def _musicgen() -> list[str]:
    exe = Path(sys.executable).with_name("musicgen")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("musicgen")
    return [found] if found else [sys.executable, "-m", "musicgen_app.cli.main"]


def test_a_sample_through_the_console_script(work: dict[str, str]) -> None:
    expected = dict(ROWS)
    env = {**os.environ, "MUSICGEN_CACHE_DIR": work["tmp"]}
    before = snapshot(work["tmp"])

    def one(row: str) -> tuple[str, subprocess.CompletedProcess[str], float]:
        t0 = time.perf_counter()
        r = subprocess.run(
            [*_musicgen(), *argv(row, work)], capture_output=True, text=True, timeout=60, env=env
        )
        return row, r, time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, SUBPROCESS_SAMPLE))
    for row, r, _ in results:
        check_refusal(r.returncode, r.stderr, expected[row], row)
        assert r.stdout == "", (row, r.stdout)
    assert snapshot(work["tmp"]) == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    times = sorted(t for _, _, t in results)
    print(f"\n{len(results)} processes: median {times[len(times) // 2]:.2f} s, slowest {times[-1]:.2f} s")


@pytest.mark.parametrize(
    ("command", "old", "new"),
    [
        ("play", "--output", "--device"),
        ("gui", "--output", "--device"),
        ("continue", "--output-device", "--device"),
        ("continue", "--play-output", "--device"),
    ],
)
def test_old_device_spellings_still_work_with_one_warning(
    work: dict[str, str], capsys: pytest.CaptureFixture[str], command: str, old: str, new: str
) -> None:
    from musicgen_app.cli.main import _build_parser

    files = {"play": [work["mid"]], "gui": [], "continue": [work["mid"], "-o", work["out_mid"]]}[command]
    parser = _build_parser(command)
    args = parser.parse_args([command, *files, old, "Some Synth"])
    assert args.device == "Some Synth"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and old in err[0] and new in err[0]
    args = parser.parse_args([command, *files, new, "Some Synth"])
    assert args.device == "Some Synth" and capsys.readouterr().err == ""
    if command != "gui":
        assert parser.parse_args([command, *files]).device == "fluidsynth"


def test_help_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    from musicgen_app.cli.main import COMMANDS

    for name in COMMANDS:
        assert main([name, "--help"]) == 0, name
        out = capsys.readouterr().out
        assert out.startswith(f"usage: musicgen {name}"), name
    assert main(["render", "--help"]) == 0
    assert "-1 dBFS" in " ".join(capsys.readouterr().out.split())


def test_refusals_import_neither_torch_nor_qt(work: dict[str, str]) -> None:
    """The whole table again, in a fresh interpreter: every row refused before torch or Qt is imported."""
    rows = [row for row, _ in ROWS]
    code = (
        "import contextlib, io, json, sys\n"
        "from musicgen_app.cli.main import main\n"
        "codes = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    with contextlib.redirect_stderr(io.StringIO()):\n"
        "        codes.append(main(argv))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules if m.startswith(('torch', 'PySide6'))})\n"
        "print(json.dumps([codes, heavy]))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps([argv(row, work) for row in rows])],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MUSICGEN_CACHE_DIR": work["tmp"]},
    )
    assert r.returncode == 0, r.stderr
    codes, heavy = json.loads(r.stdout)
    assert codes == [2] * len(rows) and heavy == [], (rows, codes, heavy)
