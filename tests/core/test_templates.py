"""dialogs/templates.py runs hassil only on the templates a text could match: it must find exactly what
hassil's recognize_all over all templates finds, in the same order."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from hassil import Intents, recognize_all
from hassil.expression import Alternative, ListReference, RuleReference, Sequence, TextChunk
from hassil.intents import TextSlotList

from dialogs.text import clean, fold
from dialogs.understanding.template_reader import _fold_templates
from dialogs.understanding.templates import Templates

CORPUS = yaml.safe_load((Path(__file__).parents[1] / "data" / "utterances.yaml").read_text(encoding="utf-8"))
# Wildcard fillers, some of them template words, punctuation and letters the skeleton has to cope with.
FILLERS = ["aarhus", "fase 2", "opgave", "udpeg projektleder", "go-live", "1. maj", "er", "ok", "som", "færdig",
           "the", "of", "status", "kommune", "it-miljø", "a_b", "...", "Ærø", "'s", "vs", "x"]


@pytest.fixture(scope="module")
def languages(content) -> list[Intents]:
    return [Intents.from_dict(_fold_templates(doc)) for doc in content.sentences.values()]


@pytest.fixture(scope="module")
def templates(languages) -> Templates:
    return Templates(languages)


def _found(results) -> list[tuple]:
    return [(r.intent.name, [(name, e.value, e.text, e.text_span) for name, e in r.entities.items()],
             r.text_chunks_matched) for r in results]


def _assert_same(templates: Templates, languages: list[Intents], text: str) -> None:
    # Both taken in full before looking: hassil moves the span of an entity two results share as it yields
    # the second one.
    everything = [result for intents in languages for result in recognize_all(text, intents)]
    assert _found(list(templates.recognize(text))) == _found(everything), text


def _variants(text: str, rng: random.Random) -> list[str]:
    folded = fold(clean(text))
    words = folded.split()
    dropped = " ".join(w for i, w in enumerate(words) if i != rng.randrange(len(words))) if words else ""
    return [folded, text, folded.upper(), folded.replace(" ", "-"), f"{folded}?!", f"- {folded} .", dropped,
            f"{rng.choice(FILLERS)} {folded}", f"{folded} {rng.choice(FILLERS)}"]


def test_corpus_and_variants_find_what_all_templates_find(templates, languages):
    rng = random.Random(7)
    for entry in CORPUS:
        for text in _variants(entry["text"] or "", rng):
            _assert_same(templates, languages, text)


def _sample(exp, rules, lists, rng: random.Random) -> str:
    """A random text the template (part) matches, or nearly: wildcards get random fillers."""
    if isinstance(exp, TextChunk):
        return rng.choice([exp.text, exp.text, exp.text.upper(), exp.text.replace(" ", "-"), exp.text + ","])
    if isinstance(exp, Alternative):
        return _sample(rng.choice(exp.items), rules, lists, rng)
    if isinstance(exp, Sequence):
        return "".join(_sample(item, rules, lists, rng) for item in exp.items)
    if isinstance(exp, RuleReference):
        return _sample(rules[exp.rule_name].expression, rules, lists, rng)
    if isinstance(exp, ListReference) and isinstance(lists.get(exp.list_name), TextSlotList):
        return _sample(rng.choice(lists[exp.list_name].values).text_in, rules, lists, rng)
    return " ".join(rng.choice(FILLERS) for _ in range(rng.randint(1, 3)))


def test_texts_made_from_the_templates_find_what_all_templates_find(templates, languages):
    rng = random.Random(11)
    blocks = [(intents, block) for intents in languages for intent in intents.intents.values() for block in intent.data]
    for _ in range(1000):
        intents, block = rng.choice(blocks)
        rules = {**intents.expansion_rules, **block.expansion_rules}
        lists = {**intents.slot_lists, **block.slot_lists}
        text = _sample(rng.choice(block.sentences).expression, rules, lists, rng)
        if rng.random() < 0.3 and len(text) > 1:  # near misses too
            cut = rng.randrange(len(text))
            text = text[:cut] + text[cut + 1:]
        _assert_same(templates, languages, text.strip())
