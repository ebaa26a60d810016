"""Each intent's test data (content/sentences/<lang>/examples.yaml): every example is understood as its
intent, with the slots it lists; no negative example of a changing intent makes it change data; and the
registry (content/intents.yaml) is checked against the handlers and the sentence files at start-up."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from content import ContentError, load_content
from content.loader import CONTENT_ROOT
from dialogs.intents import bind
from dialogs.understanding import Understander
from tests.understanding_eval import slot_matches

LANGUAGES = ("da", "en")


@pytest.fixture(scope="module")
def understander(content) -> Understander:
    return Understander.of(content)


def _examples(content, lang):
    for intent, given in content.examples[lang].intents.items():
        for example in given.all():
            yield intent, example


def test_every_intent_has_examples_and_every_change_has_negatives_in_both_languages(content):
    for lang in LANGUAGES:
        file = content.examples[lang]
        assert set(file.intents) == set(content.intents), lang
        for name, spec in content.intents.items():
            assert len(file.intents[name].all()) >= 3, (lang, name)
            if spec.changes:
                assert len(file.intents[name].not_) >= 3, (lang, name)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_example_is_understood_as_its_intent_with_its_slots(content, understander, lang):
    terms = {t.id for t in content.terms}
    misses = []
    for intent, example in _examples(content, lang):
        consultant = content.intents[intent].consultant
        got = understander.understand(example.text, consultant=consultant)
        ok = got.intent == intent and all(
            slot_matches(name, wanted, got.slots.get(name), set(got.unresolved), terms)
            for name, wanted in example.slots.items())
        if not ok:
            misses.append(f"{example.text!r}: want {intent} {example.slots}, got {got.intent} {got.slots} ({got.why})")
        assert got.why, example.text  # the log can say why
    assert not misses, "\n".join(misses)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_negative_example_makes_its_intent_change_data(content, understander, lang):
    acting = []
    for intent, given in content.examples[lang].intents.items():
        for text in given.not_:
            got = understander.understand(text)
            spec = content.intents[got.intent]
            acts = spec.changes and not got.confirm and all(got.slots.get(s) for s in spec.required)
            if got.intent == intent and acts:
                acting.append(f"{text!r} would {intent} {got.slots} ({got.why})")
    assert not acting, "\n".join(acting)


@pytest.mark.parametrize("text, intent", [
    ("hvem er ansvarlig for Planlæg uddannelse?", "who_assigned"),
    ("who is responsible for Plan training?", "who_assigned"),
    ("er Udpeg gevinstejer udført?", "task_status"),
    ("er databehandleraftalen godkendt", "task_status"),
    ("hvornår er go-live?", "milestones"),
    ("hvem markerede Udpeg projektleder?", "history"),
    ("skal vi markere Kortlæg to-be som færdig?", "task_status"),
])
def test_questions_in_the_shape_of_a_change_are_answered_not_acted_on(understander, text, intent):
    got = understander.understand(text)
    assert got.intent == intent, got


@pytest.mark.parametrize("text", ["jeg tror Udpeg gevinstejer er udført", "gevinstejeren er næsten udpeget",
                                  "I think the trainers are appointed", "færdig"])
def test_an_unsure_statement_is_asked_about_first(understander, text):
    got = understander.understand(text)
    assert got.intent == "mark_done" and got.confirm, got


def test_a_person_is_never_a_question_word_or_a_phrase(understander):
    for text in ("sæt hvem som ansvarlig for Planlæg uddannelse", "hvem er ansvarlig for Planlæg uddannelse",
                 "make who responsible for Plan training"):
        got = understander.understand(text)
        assert got.slots.get("person") in (None, "@me") or "person" in got.unresolved, (text, got)


def test_mig_and_me_are_the_sender(understander):
    assert understander.understand("sæt mig som ansvarlig for Planlæg uddannelse").slots["person"] == "@me"
    assert understander.understand("make me responsible for Plan training").slots["person"] == "@me"


@pytest.mark.parametrize("text, language", [("hvad skal vi nu?", "da"), ("what's next?", "en"),
                                            ("please assign Appoint super users to Lars Nielsen", "en"),
                                            ("hvem er ansvarlig for Appoint super users?", "da")])
def test_the_language_of_a_message_is_told_by_its_words_not_its_names(understander, text, language):
    assert understander.understand(text).language == language


def test_no_two_examples_of_different_intents_have_one_shape(understander):
    """An example is remembered by its shape (names as their kind): two intents with one shape contradict."""
    assert understander.conflicts == {}


def test_every_intent_binds_to_a_coroutine_of_the_dialogs(content):
    handlers = bind(content.intents)
    assert set(handlers) == set(content.intents)


# -- start-up refuses a registry or sentence file that does not fit -----------------------------------------------
@pytest.fixture
def copied(tmp_path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_a_handler_that_does_not_exist_stops_start_up_naming_the_intent(copied):
    _edit(copied / "intents.yaml", lambda d: d["intents"]["status"].update(handler="status.nothing"))
    with pytest.raises(ContentError, match=r"intents.status.handler: dialogs/status.py has no coroutine 'nothing'"):
        bind(load_content(copied).intents)


def test_an_example_of_an_undeclared_intent_stops_start_up(copied):
    _edit(copied / "sentences" / "da" / "examples.yaml",
          lambda d: d["intents"].update(dance={"examples": ["dans", "dans nu", "dans igen"]}))
    with pytest.raises(ContentError, match=r"da/examples.yaml: intents.dance: not declared in content/intents.yaml"):
        load_content(copied)


def test_a_change_without_negative_examples_stops_start_up(copied):
    _edit(copied / "sentences" / "en" / "examples.yaml", lambda d: d["intents"]["mark_done"].update({"not": []}))
    with pytest.raises(ContentError, match=r"en/examples.yaml: intents.mark_done.not: an intent that changes data needs"):
        load_content(copied)


def test_a_template_slot_the_intent_does_not_take_stops_start_up(copied):
    _edit(copied / "sentences" / "da" / "templates.yaml",
          lambda d: d["intents"]["status"]["data"][0]["sentences"].append("status for {municipality}"))
    with pytest.raises(ContentError, match=r"slot 'municipality' is not declared for 'status'"):
        load_content(copied)


def test_an_intent_without_examples_stops_start_up(copied):
    _edit(copied / "intents.yaml", lambda d: d["intents"].update(dance={"handler": "help.handle"}))
    with pytest.raises(ContentError, match=r"examples.yaml: intents.dance: has no examples"):
        load_content(copied)


def test_a_change_asked_as_a_question_must_name_a_read_only_intent(copied):
    _edit(copied / "intents.yaml", lambda d: d["intents"]["mark_done"].update(asked="reopen"))
    with pytest.raises(ContentError, match=r"intents.mark_done.asked: must be 'confirm' or an intent that changes nothing"):
        load_content(copied)
