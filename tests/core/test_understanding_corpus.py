"""The utterance corpus (tests/data/utterances.yaml): intent and slots for each, accuracy >= 95 %."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from dialogs.understanding import Understander

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "utterances.yaml").read_text(encoding="utf-8"))
REQUIRED_ACCURACY = 0.95


@pytest.fixture(scope="module")
def understander(content):
    return Understander.of(content)


def test_corpus_is_large_and_covers_every_intent():
    assert len(CORPUS) >= 150
    intents = {entry["intent"] for entry in CORPUS}
    assert intents >= {"register", "status", "next", "phase_info", "theme_info", "define", "compare_terms",
                       "mark_done", "reopen", "history", "help", "set_language", "unknown"}
    assert sum("<at>" in (entry["text"] or "") for entry in CORPUS) >= 10


def test_corpus_accuracy(understander):
    misses = []
    started = time.perf_counter()
    for entry in CORPUS:
        got = understander.understand(entry["text"] or "")
        expected_slots = entry.get("slots") or {}
        if got.intent != entry["intent"] or got.slots != expected_slots:
            misses.append(f"{entry['text']!r}: expected {entry['intent']} {expected_slots}, got {got.intent} {got.slots}")
    elapsed_ms = (time.perf_counter() - started) * 1000 / len(CORPUS)
    accuracy = 1 - len(misses) / len(CORPUS)
    print(f"\nunderstanding accuracy: {accuracy:.1%} of {len(CORPUS)} utterances, {elapsed_ms:.2f} ms each")
    for miss in misses:
        print("  miss:", miss)
    assert accuracy >= REQUIRED_ACCURACY, "\n".join(misses)


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂🙂", "?!", "<at>Bot</at>", "x" * 20_000, "\x00\x01\x02 status"])
def test_odd_input_never_raises(understander, text):
    assert understander.understand(text).intent in {"unknown", "status", "smalltalk"}
