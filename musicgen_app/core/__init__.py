"""Song model, timing, MIDI file and project I/O. Imports neither Qt nor torch."""
