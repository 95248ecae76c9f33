"""The app's own exception types, raised at every boundary with a message a musician understands.

Every error that can reach a user derives from :class:`MusicgenError`; the CLI and the GUI turn
these into one-line messages (never a traceback).
"""

from __future__ import annotations


class MusicgenError(Exception):
    """Base of every error the app reports to a user."""


class MidiImportError(MusicgenError):
    """A MIDI file could not be read (and could not be salvaged)."""


class MidiExportError(MusicgenError):
    """A song could not be written as a MIDI file."""


class ProjectError(MusicgenError):
    """A project file (.mgproj) could not be read or written."""


class EditError(MusicgenError):
    """An edit operation does not apply to the song (e.g. the note is not there)."""


class CheckpointError(MusicgenError):
    """A model checkpoint is missing, corrupt or of an unsupported format."""


class DatasetError(MusicgenError):
    """A training dataset could not be built or loaded."""


class GenerationError(MusicgenError):
    """A generation session could not start or failed while running."""


class DeviceError(MusicgenError):
    """An audio or MIDI device is missing, busy or failed."""


class SoundFontError(DeviceError):
    """A SoundFont is missing or corrupt."""


class AudioError(MusicgenError):
    """An audio file could not be read (missing, damaged, of a format we do not read) or transcribed."""
