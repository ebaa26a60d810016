"""bot/understanding_cache.py is speed only: an understander built from the stored training understands every
message exactly as one trained afresh, and a changed content folder or a damaged file means training again."""
from __future__ import annotations

import shutil

from bot import understanding_cache
from content import load_content
from content.loader import CONTENT_ROOT
from dialogs.understanding import Understander
from dialogs.understanding.pipeline import _sentences
from tests.understanding_eval import load


def test_the_stored_training_reads_back_as_it_was(content):
    trained = Understander.of(content).trained
    assert understanding_cache.from_json(understanding_cache.to_json(trained)) == trained


def test_an_understander_from_the_stored_training_understands_as_one_trained_afresh(content):
    fresh = Understander(content)
    stored = Understander(content, understanding_cache.from_json(understanding_cache.to_json(fresh.trained)))
    messages = [text for _, text, _ in _sentences(content)] + [case["text"] for case in load("dev")]
    messages += ["hvad er det næste i Forberedelse?", "marker den som udført", "kaffemaskine", "ja 1 3", ""]
    assert len(messages) > 3000
    for text in messages:
        assert stored.understand(text) == fresh.understand(text), text
        assert stored.understand(text, consultant=True) == fresh.understand(text, consultant=True), text


def test_the_key_follows_the_content_and_a_damaged_file_means_training_again(tmp_path, caplog):
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    key = understanding_cache.training_key(root)
    assert understanding_cache.training_key(root) == key
    examples = root / "sentences" / "da" / "examples.yaml"
    examples.write_text(examples.read_text(encoding="utf-8") + "\n# en bemærkning\n", encoding="utf-8")
    assert understanding_cache.training_key(root) != key

    content = load_content(root)
    cache = tmp_path / "cache"
    first = understanding_cache.understander(content, root, cache)
    stored = cache / f"training-{understanding_cache.training_key(root)}.json"
    assert stored.exists() and [p.name for p in cache.iterdir()] == [stored.name]
    stored.write_bytes(b'{"known": [')  # a torn write, a full disk: not the bot's problem to keep
    content_again = load_content(root)  # another load: Understander.of builds anew for it
    again = understanding_cache.understander(content_again, root, cache)
    assert again.trained == first.trained
    assert understanding_cache.from_json(stored.read_bytes()) == first.trained  # written again, whole
    assert "understanding cache ignored" in caplog.text
