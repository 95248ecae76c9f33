"""The generation panel shows the shipped models' cards."""

from __future__ import annotations

import pytest

from musicgen_app.gui.generation_panel import GenerationPanel, card_text


def test_cards_of_the_shipped_models(qtbot) -> None:
    from musicgen_app.ml.registry import list_models

    infos = list_models()
    if not infos:
        pytest.skip("no trained model in models/")
    panel = GenerationPanel()
    qtbot.addWidget(panel)
    panel.set_models(infos, "melody-lstm")
    assert panel.model_combo.count() == len(infos)
    for info in infos:
        text = card_text(info)
        assert info.name in text and f"Paper: {info.seed_paper}" in text and "Data: " in text
    assert panel.model_name() == (
        "melody-lstm" if any(i.name == "melody-lstm" for i in infos) else infos[0].name
    )
    assert panel.model_name() in panel.card.text()
    assert panel.continue_button.isEnabled()


def test_no_model_explains_how_to_get_one(qtbot) -> None:
    panel = GenerationPanel()
    qtbot.addWidget(panel)
    panel.set_models([])
    assert "musicgen train" in panel.card.text() and not panel.continue_button.isEnabled()


def test_a_model_asked_for_by_several_threads_loads_once() -> None:
    import threading

    from musicgen_app.gui.generation import ModelCache
    from musicgen_app.ml.registry import list_models, load_model

    infos = list_models()
    if not infos:
        pytest.skip("no trained model in models/")
    calls: list[str] = []

    def loader(name: str):
        calls.append(name)
        return load_model(name)

    cache = ModelCache(loader)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(infos[0].name))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [infos[0].name] and len(got) == 4 and all(m is got[0] for m in got)
