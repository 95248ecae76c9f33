"""Clock, scheduler, outputs (FluidSynth, MIDI port, file), MIDI input. No Qt."""
