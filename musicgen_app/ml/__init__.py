"""Tokenizers, networks, checkpoints, generation sessions, datasets, training, evaluation. No Qt."""

# the model the app and `musicgen continue` use unless told otherwise: the best single-line model
# in the judge's table (README, `musicgen evaluate --all`); the others stay selectable
DEFAULT_MODEL = "note-transformer"
