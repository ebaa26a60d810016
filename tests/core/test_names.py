"""NameIndex: one matcher for municipalities, phases, themes, terms and tasks. It forgives spelling
(case, aa/å, hyphens, spaces, Danish endings, a typo) and refuses to guess between close candidates.
Also text.clean, which every utterance passes through first."""
from __future__ import annotations

import time

import pytest

from content.names import key
from dialogs.text import MAX_UTTERANCE, clean
from dialogs.understanding import Understander
from dialogs.understanding.names import Lookup, NameIndex


@pytest.fixture(scope="module")
def understander(content) -> Understander:
    return Understander.of(content)


# -- small, self-contained indexes --------------------------------------------------------------------

TOWNS = NameIndex({
    "0169": ["Høje-Taastrup", "Høje-Taastrup Kommune"],
    "0751": ["Aarhus", "Århus"],
    "0461": ["Odense"],
    "n1": ["Nordby"],
    "n2": ["Nordbo"],
})


def test_exact_name():
    assert TOWNS.lookup("Odense") == Lookup("0461")
    assert TOWNS.lookup("Odense").ambiguous is False


@pytest.mark.parametrize("typed", [
    "Høje-Taastrup", "Høje Taastrup", "høje taastrup", "HØJE-TAASTRUP", "hoeje-taastrup", "Hoeje Taastrup",
    "Høje-Tåstrup", "hoejetaastrup", "  Høje  -  Taastrup  ", "Høje-Taastrup Kommune",
])
def test_case_aa_and_hyphen_space_folding(typed):
    assert TOWNS.lookup(typed).id == "0169"


@pytest.mark.parametrize("typed", ["Aarhus", "Århus", "aarhus", "ÅRHUS", "Aarhus."])
def test_aa_and_å_meet(typed):
    assert TOWNS.lookup(typed).id == "0751"


def test_keys_fold_the_same_way():
    assert key("Høje-Taastrup") == key("hoeje taastrup") == key("HOEJE.TAASTRUP") == "hoejetaastrup"
    assert key("Århus") == key("aarhus")


def test_a_typo_still_finds_the_one_name():
    # One or two wrong letters in a name of 8+ letters; a short word is left to the suggestions.
    assert TOWNS.lookup("Hoeje Tastrup").id == "0169"
    assert TOWNS.lookup("Høje-Taastrop").id == "0169"


def test_two_close_names_are_a_tie_not_a_guess():
    found = TOWNS.lookup("Nordb")
    assert found.id is None
    assert found.ambiguous
    assert set(found.candidates) == {"n1", "n2"}


def test_no_match_gives_at_most_three_suggestions():
    found = TOWNS.lookup("Xylofonby")
    assert found.id is None
    assert 1 <= len(found.candidates) <= 3
    assert TOWNS.suggest("Xylofonby", n=2) == list(TOWNS.suggest("Xylofonby"))[:2]


def test_empty_query_finds_nothing():
    assert TOWNS.lookup("") == Lookup()
    assert TOWNS.lookup(" - . ") == Lookup()
    assert TOWNS.suggest("") == []


def test_suggestions_for_no_match_are_not_called_ambiguous():
    found = TOWNS.lookup("Xylofonby")
    assert found.id is None and found.candidates
    assert not found.ambiguous


# -- the shipped content's indexes ----------------------------------------------------------------------


@pytest.mark.parametrize("typed, code", [
    ("Aarhus", "0751"), ("Århus", "0751"), ("aarhus kommune", "0751"), ("Høje Taastrup", "0169"),
    ("hoeje-taastrup", "0169"), ("Høje Tåstrup", "0169"), ("Lyngby-Taarbæk", "0173"), ("lyngby taarbaek", "0173"),
    ("Københavns Kommune", "0101"), ("Frederiksbreg", "0147"), ("Brøndby", "0153"),
])
def test_municipalities(understander, typed, code):
    assert understander.municipalities.lookup(typed).id == code


def test_municipality_prefix_shared_by_three_is_ambiguous(understander):
    found = understander.municipalities.lookup("Frederiks")
    assert found.id is None and found.ambiguous
    assert set(found.candidates) == {"0147", "0250", "0813"}  # Frederiksberg, -sund, -havn


def test_unknown_municipality_gets_three_suggestions(understander, content):
    found = understander.municipalities.lookup("Xyzzy")
    assert found.id is None
    assert 1 <= len(found.candidates) <= 3
    assert all(content.municipality(code) for code in found.candidates)


@pytest.mark.parametrize("typed, term", [
    ("udrulningsforløbet", "udrulningsforloeb"),  # definite form
    ("Udrulningsforløb", "udrulningsforloeb"),
    ("udrulnings-forløbet", "udrulningsforloeb"),
    ("idriftsættelsesdatoen", "idriftsaettelsesdato"),
    ("faseovergangene", "faseovergang"),  # definite plural
    ("Go Live", "go-live"),
    ("golive", "go-live"),
])
def test_danish_inflection_and_spelling_of_terms(understander, typed, term):
    assert understander.terms.lookup(typed).id == term


@pytest.mark.parametrize("typed, task", [
    ("Udpeg projektleder", "udpeg-projektleder"),
    ("projektleeder", "udpeg-projektleder"),  # typo
    ("projektlederen", "udpeg-projektleder"),
    ("Appoint the project manager", "udpeg-projektleder"),
])
def test_tasks(understander, typed, task):
    assert understander.tasks.lookup(typed).id == task


def test_a_word_shared_by_several_tasks_is_ambiguous(understander):
    found = understander.tasks.lookup("udpeg")
    assert found.id is None and found.ambiguous
    assert {"udpeg-projektejer", "udpeg-projektleder", "udpeg-gevinstejer"} <= set(found.candidates)


def test_phases_and_themes(understander):
    assert understander.phases.lookup("forberedelsen").id == "2"
    assert understander.phases.lookup("Fase 3").id == "3"
    assert understander.themes.lookup("Gevinster og vaerdier").id == "gevinster"
    assert understander.themes.lookup("it sikkerhed og aftaler").id == "it-sikkerhed"


# -- clean --------------------------------------------------------------------------------------------


def test_clean_strips_teams_mentions():
    assert clean("<at>Implementeringsassistent</at> status") == "status"
    assert clean("<AT>Implementerings\nassistent</AT>hvad skal vi nu?") == "hvad skal vi nu"
    assert clean("hej <at>Bot</at>, <at>Mette Hansen</at> udført 2") == "hej udført 2"


def test_clean_removes_control_characters():
    controls = "".join(chr(c) for c in (*range(0, 32), 127, 0x200B, 0x2028))
    cleaned = clean(f"sta{controls}tus\x00\x1b[31m")
    assert all(ch.isprintable() for ch in cleaned)
    assert cleaned.startswith("sta") and "tus" in cleaned
    assert clean("\x00\x07status\r\n") == "status"


def test_clean_keeps_danish_letters_and_drops_quotes():
    assert clean("«Hvad betyder “go-live”?»") == "Hvad betyder go-live"
    assert clean("  Udpeg   projektleder  ") == "Udpeg projektleder"


def test_clean_caps_a_20_kb_paste_quickly():
    paste = "<at>Implementeringsassistent</at> " + "lorem ipsum dolor " * 1200
    assert len(paste) > 20_000
    start = time.perf_counter()
    cleaned = clean(paste)
    assert time.perf_counter() - start < 0.05
    assert 0 < len(cleaned) <= MAX_UTTERANCE
    assert cleaned.startswith("lorem ipsum")


def test_understanding_a_20_kb_paste_is_quick(understander):
    start = time.perf_counter()
    understanding = understander.understand("status " + "x " * 10_000)
    assert time.perf_counter() - start < 0.5
    assert len(understanding.text) <= MAX_UTTERANCE


def test_clean_of_20_kb_unterminated_mentions_is_quick():
    paste = "<at>" * 5000
    start = time.perf_counter()
    cleaned = clean(paste)
    assert time.perf_counter() - start < 0.05
    assert len(cleaned) <= MAX_UTTERANCE
