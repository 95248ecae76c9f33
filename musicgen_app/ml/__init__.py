"""Tokenizers, networks, checkpoints, generation sessions, datasets, training, evaluation. No Qt."""

# the model the app and `musicgen continue` use unless told otherwise: the best single-line model
# in the judge's table (README, `musicgen evaluate --all`); the others stay selectable
DEFAULT_MODEL = "note-transformer"

# the families `musicgen train FAMILY --data DIR --from MODEL` fine-tunes on a folder of MIDI files
# (a model of the same family: its config, vocabulary and weights; and whose models "Train on My
# Music…" offers as a starting point): every family that trains through the one loop
FINE_TUNABLE = (
    "melody-lstm",
    "char-lstm",
    "chord-lstm",
    "pianoroll-lstm",
    "pianoroll-seq2seq",
    "pianoroll-gan",
    "wavenet",
    "note-transformer",
)
