"""Tokenizers, networks, checkpoints, generation sessions, datasets, training, evaluation. No Qt."""
