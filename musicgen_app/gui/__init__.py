"""Qt only: thin adapters over core, ml and playback."""
