"""The pure layers never import Qt; core imports no torch either."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "musicgen_app"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith("musicgen_app."):
                names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ["core", "ml", "playback"])
def test_pure_layers_never_import_qt(layer: str) -> None:
    files = list((PKG / layer).rglob("*.py"))
    assert files
    for f in files:
        bad = {
            n
            for n in _imports(f)
            if n.startswith(("PySide6", "PyQt", "shiboken")) or n.startswith("musicgen_app.gui")
        }
        assert not bad, f"{f} imports {bad}"


def test_core_imports_no_torch_and_no_higher_layer() -> None:
    for f in (PKG / "core").rglob("*.py"):
        imports = _imports(f)
        assert "torch" not in imports, f
        assert not any(
            n.startswith(("musicgen_app.ml", "musicgen_app.playback", "musicgen_app.gui")) for n in imports
        ), f


def test_ml_and_playback_do_not_import_each_other() -> None:
    for layer, other in (("ml", "playback"), ("playback", "ml")):
        for f in (PKG / layer).rglob("*.py"):
            assert not any(n.startswith(f"musicgen_app.{other}") for n in _imports(f)), f


def test_importing_core_at_runtime_loads_no_qt() -> None:
    import subprocess
    import sys

    code = "\n".join(
        [
            "import importlib, pkgutil, sys",
            "import musicgen_app.core as c, musicgen_app.playback as p",
            "for pkg in (c, p):",
            "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):",
            "        importlib.import_module(m.name)",
            "sys.exit(1 if any(m.startswith('PySide6') for m in sys.modules) else 0)",
        ]
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
