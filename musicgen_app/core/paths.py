"""Where the app keeps its files: user data, cache, config (platformdirs), and shipped resources.

Each directory can be moved with an environment variable (tests use this):
``MUSICGEN_DATA_DIR``, ``MUSICGEN_CACHE_DIR``, ``MUSICGEN_CONFIG_DIR``, ``MUSICGEN_MODELS_DIR``,
``MUSICGEN_USER_MODELS_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "musicgen"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _dir(env: str, default: str) -> Path:
    path = Path(os.environ.get(env) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """User data: autosaves, recovery files, recent files."""
    return _dir("MUSICGEN_DATA_DIR", platformdirs.user_data_dir(APP_NAME))


def cache_dir() -> Path:
    """User cache: built datasets."""
    return _dir("MUSICGEN_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME))


def config_dir() -> Path:
    """User settings: devices, last model."""
    return _dir("MUSICGEN_CONFIG_DIR", platformdirs.user_config_dir(APP_NAME))


def models_dir() -> Path:
    """The shipped checkpoints (``models/`` at the top of the project)."""
    return Path(os.environ.get("MUSICGEN_MODELS_DIR") or REPO_ROOT / "models")


def user_models_dir() -> Path:
    """The musician's own models (trained with "Train on My Music…"): ``models/`` in the user data."""
    return _dir("MUSICGEN_USER_MODELS_DIR", str(data_dir() / "models"))


def resources_dir() -> Path:
    """Shipped resources (icons, example sketches)."""
    return REPO_ROOT / "resources"
