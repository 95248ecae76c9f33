"""Model cards for musicians: what a model is good at, what it learnt from, and one line of
figures; the technical card (paper, architecture, metrics) stays folded under "Details".

Everything is read from the registry entry (the checkpoint's JSON card); the family of a model
says what kind of music it writes.
"""

from __future__ import annotations

import html
import logging
from typing import Any

logger = logging.getLogger(__name__)

_VOICES = "Several voices at once (chorale textures, accompaniments), keeping the voices moving."
# family (or name) -> what a musician can expect from it
GOOD_AT = {
    "melody-lstm": "Single-line melodies that keep the key and the feel of the bar: tunes, hooks, riffs.",
    "wavenet": "Single-line melodies; quick to answer, a little freer than melody-lstm.",
    "char-lstm": "Single-line melodies with free rhythm, written note by note.",
    "chord-lstm": "Chord progressions: block chords in four-part harmony.",
    "pianoroll-gan": "Several voices at once, a bar at a time: chorale-like textures, bold and varied.",
    "pianoroll": _VOICES,  # version-1 cards of the piano-roll families
    "pianoroll-lstm": _VOICES,
    "pianoroll-seq2seq": _VOICES,
    "note-transformer": "Single-line melodies in folk, pop or chorale style, with pop dynamics.",
}
KIND = {
    "melody-lstm": "melody",
    "wavenet": "melody",
    "char-lstm": "melody",
    "note-transformer": "melody",
    "chord-lstm": "chords",
    "pianoroll": "polyphonic",  # version-1 cards of the three piano-roll families
    "pianoroll-lstm": "polyphonic",
    "pianoroll-seq2seq": "polyphonic",
    "pianoroll-gan": "polyphonic",
}


def _card(info: Any) -> dict[str, Any]:
    card = getattr(info, "card", None) or {}
    return card if isinstance(card, dict) else {}


def good_at(info: Any) -> str:
    """One sentence on what the model writes well."""
    card = _card(info)
    name = str(getattr(info, "name", ""))
    family = str(card.get("family", ""))
    return GOOD_AT.get(name) or GOOD_AT.get(family) or str(card.get("title") or "A music model.")


def trained_on(info: Any) -> str:
    """What the model learnt from, with how much of it when the card says."""
    card = _card(info)
    data = card.get("data", {})
    if not isinstance(data, dict):
        return str(data or getattr(info, "dataset", ""))
    dataset = str(data.get("dataset") or getattr(info, "dataset", "") or "?")
    count = None
    pieces = data.get("pieces")
    tunes = data.get("tunes")
    stats = data.get("stats")
    if isinstance(pieces, dict):
        count = sum(v for v in pieces.values() if isinstance(v, int))
    elif isinstance(tunes, dict):
        count = sum(v for v in tunes.values() if isinstance(v, int))
    elif isinstance(stats, dict) and isinstance(stats.get("kept"), int):
        count = stats["kept"]
    return f"{dataset}, {count:,} pieces" if count else dataset


def _in_key(metrics: dict[str, Any], name: str) -> tuple[float, float] | None:
    cont = metrics.get("continuations")
    if isinstance(cont, dict) and isinstance(cont.get("by_group"), dict):
        groups = [g for k, g in cont["by_group"].items() if k in ("major", "minor") and isinstance(g, dict)]
        n = sum(g.get("tunes", 0) for g in groups)
        if n:
            model = sum(g.get("model_in_key", 0) * g.get("tunes", 0) for g in groups) / n
            real = sum(g.get("real_in_key", 0) * g.get("tunes", 0) for g in groups) / n
            return model, real
    chor = metrics.get("chorale_continuations")
    if isinstance(chor, dict) and isinstance(chor.get("systems"), dict):
        systems = chor["systems"]
        mine, real = systems.get(name), systems.get("real")
        if isinstance(mine, dict) and isinstance(real, dict) and "in_key" in mine and "in_key" in real:
            return float(mine["in_key"]), float(real["in_key"])
    return None


def figures(info: Any) -> str:
    """One line of figures a musician can read (in key, answer time), or the test accuracy."""
    metrics = getattr(info, "metrics", None) or {}
    if not isinstance(metrics, dict):
        return ""
    parts = []
    in_key = _in_key(metrics, str(getattr(info, "name", "")))
    if in_key is not None:
        parts.append(f"continuations {in_key[0]:.0%} in key (real music {in_key[1]:.0%})")
    elif isinstance(metrics.get("test_accuracy"), float):
        parts.append(f"guesses {metrics['test_accuracy']:.0%} of unseen steps")
    if isinstance(metrics.get("first_note_ms"), float | int):
        parts.append(f"first note in {metrics['first_note_ms']:.0f} ms")
    return " · ".join(parts)


def summary_html(info: Any) -> str:
    """The musician's card: name, good at, trained on, figures."""
    if info is None:
        return "<i>No model. Use “Load checkpoint…” or train one with <tt>musicgen train</tt>.</i>"
    name = html.escape(str(getattr(info, "name", "?")))
    family = str(_card(info).get("family", ""))
    kind = KIND.get(family, "")
    head = f"<b>{name}</b>" + (f" <span style='color:#667'>({kind})</span>" if kind else "")
    lines = [head, html.escape(good_at(info)), f"<i>Learnt from:</i> {html.escape(trained_on(info))}"]
    fig = figures(info)
    if fig:
        lines.append(f"<span style='color:#445'>{html.escape(fig)}</span>")
    return "<br>".join(lines)


def details_html(info: Any) -> str:
    """The technical card (description, paper, architecture, data, metrics)."""
    if info is None:
        return ""
    parts = []
    card = _card(info)
    desc = str(card.get("description") or card.get("title") or "")
    if desc:
        parts.append(html.escape(desc))
    for label, attr in (("Paper", "seed_paper"), ("Architecture", "architecture"), ("Data", "dataset")):
        value = getattr(info, attr, "")
        if value:
            parts.append(f"{label}: {html.escape(str(value))}")
    metrics = getattr(info, "metrics", None) or {}
    if isinstance(metrics, dict) and metrics:
        shown: list[str] = []
        for k, v in metrics.items():
            if isinstance(v, dict | list) or len(shown) >= 8:
                continue
            shown.append(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}")
        parts.append("Metrics: " + html.escape(", ".join(shown)))
    return "<br>".join(parts)
