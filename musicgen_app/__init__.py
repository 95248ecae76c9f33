"""musicgen: sketch a melody, let a model continue it, hear it stream live."""

__version__ = "0.1.0"
