"""The shipped content loads as IDS.md describes it, and every broken file stops loading with a
ContentError that names the file and the field (never a traceback).

Each negative test breaks exactly one thing in a copy of content/ and loads the copy.
"""
from __future__ import annotations

import re
import shutil
import traceback
from pathlib import Path

import pytest
import yaml

from content import ContentError, load_content
from content.loader import CONTENT_ROOT

IDS = (CONTENT_ROOT / "IDS.md").read_text(encoding="utf-8")
CENTRAL_TERMS = ("implementering", "udrulningsforloeb", "udrulning", "idriftsaettelsesdato", "go-live")


def _section(title: str) -> list[str]:
    """The non-empty lines of one '## title' section of IDS.md."""
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", IDS, re.M | re.S)
    assert match, f"IDS.md has no section {title!r}"
    return [line for line in match.group(1).splitlines() if line.strip()]


def _ids_tasks() -> list[tuple[str, int, str, str]]:
    rows = []
    for line in _section("KLIK tasks"):
        m = re.match(r"^([a-z0-9-]+)\s+(\d)\s+([a-z-]+)\s+(.+?)\s*$", line)
        if m:
            rows.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    return rows


def _ids_themes() -> list[tuple[str, str]]:
    rows = []
    for line in _section("Themes"):
        m = re.match(r"^([a-z-]+)\s{2,}(.+?)\s*$", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


# -- the shipped content ------------------------------------------------------------------------------


def test_shipped_content_has_four_phases_in_order(content):
    assert [(p.number, p.id) for p in content.phases] == [
        (1, "opstart"), (2, "forberedelse"), (3, "ibrugtagning"), (4, "forankring")]


def test_shipped_content_has_the_seven_themes_of_ids_md(content):
    expected = _ids_themes()
    assert len(expected) == 7
    assert [(t.id, t.name.da) for t in content.themes] == expected


def test_shipped_content_has_the_34_klik_tasks_with_ids_md_phases(content):
    expected = _ids_tasks()
    assert len(expected) == 34
    assert len(content.tasks) == 34
    assert [(t.id, t.phase, t.theme, t.title.da) for t in content.tasks] == expected
    assert [len(content.tasks_in(n)) for n in (1, 2, 3, 4)] == [6, 22, 4, 2]
    for task in content.tasks:
        assert task.title.en.strip(), task.id


def test_shipped_glossary_has_the_five_central_terms_approved_april_2018(content):
    central = [t for t in content.terms if t.status is not None]
    assert [t.id for t in central] == list(CENTRAL_TERMS)
    for term in central:
        assert term.status.da == "Godkendt april 2018"
        # The English is ours, and says so.
        assert "April 2018" in term.status.en and "translation" in term.status.en
    # Every other concept of IDS.md is there too, without an approval status.
    lines = _section("Glossary terms")
    assert [s.strip() for s in lines[0].split(":", 1)[1].split("·")] == list(CENTRAL_TERMS)
    others = [s.strip() for s in " ".join(lines[1:]).split(":", 1)[1].split("·") if s.strip()]
    assert len(others) == 17
    for term_id in others:
        assert content.term(term_id) is not None, term_id
        assert content.term(term_id).status is None, term_id


def test_shipped_content_has_98_municipalities(content):
    assert len(content.municipalities) == 98
    codes = [m.code for m in content.municipalities]
    assert len(set(codes)) == 98
    assert all(re.fullmatch(r"\d{4}", c) for c in codes)
    assert content.municipality("0751").name == "Aarhus"
    assert content.municipality("0101").name == "København"
    assert "Århus" in content.municipality("0751").aliases


def test_shipped_content_has_both_sentence_languages(content):
    assert set(content.sentences) == {"da", "en"}
    assert content.project.exclude_tasks == [] and content.project.add_tasks == []


# -- broken copies ------------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path) -> Path:
    """A private copy of content/ that a test may break."""
    copy = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, copy)
    return copy


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _set_project(root: Path, **fields) -> Path:
    path = root / "data" / "project.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["project"].update(fields)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _error(root: Path) -> str:
    with pytest.raises(ContentError) as info:
        load_content(root)
    message = str(info.value)
    # A message for a content editor, not a Python traceback (and no chained pydantic/yaml traceback).
    assert "Traceback" not in message
    assert 'File "' not in message
    printed = "".join(traceback.format_exception(info.value))
    assert "During handling of the above exception" not in printed
    assert "direct cause of the following exception" not in printed
    for line in message.splitlines():
        assert line.startswith(str(root / "data")), line
    return message


def test_task_missing_english_title(root):
    path = root / "data" / "tasks.yaml"
    _replace(path, 'title: {da: "Udpeg projektleder", en: "Appoint the project manager"}',
             'title: {da: "Udpeg projektleder"}')
    message = _error(root)
    assert str(path) in message
    assert "tasks[1] (id=udpeg-projektleder).title.en" in message


def test_task_with_unknown_theme(root):
    path = root / "data" / "tasks.yaml"
    text = path.read_text(encoding="utf-8")
    # The third task (udpeg-gevinstejer) is the first with theme gevinster.
    path.write_text(text.replace("    theme: gevinster\n", "    theme: gevinst-typo\n", 1), encoding="utf-8")
    message = _error(root)
    assert str(path) in message
    assert "tasks[2] (id=udpeg-gevinstejer).theme" in message
    assert "gevinst-typo" in message


def test_phase_with_misspelt_key_is_rejected(root):
    path = root / "data" / "phases.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    focus:\n", "    fokus:\n", 1), encoding="utf-8")
    message = _error(root)
    assert str(path) in message
    assert "phases[0] (id=opstart).fokus" in message  # the extra key is named ...
    assert "Extra inputs are not permitted" in message


def test_yaml_syntax_error_names_file_and_line(root):
    path = root / "data" / "tasks.yaml"
    broken = 'title: {da: "Udpeg projektleder", en: "Appoint the project manager"]'
    _replace(path, 'title: {da: "Udpeg projektleder", en: "Appoint the project manager"}', broken)
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if broken in text)
    message = _error(root)
    assert str(path) in message
    assert f"line {line}" in message


def test_two_tasks_sharing_an_alias(root):
    path = root / "data" / "tasks.yaml"
    _replace(path, '"gevinstejer", "gevinstejeren"', '"projektejer", "gevinstejeren"')
    message = _error(root)
    assert str(path) in message
    assert "tasks (id=udpeg-gevinstejer).aliases" in message
    assert "'projektejer' also names task 'udpeg-projektejer'" in message


def test_unknown_id_in_exclude_tasks(root):
    path = _set_project(root, exclude_tasks=["udpeg-projektleder", "no-such-task"])
    message = _error(root)
    assert str(path) in message
    assert "project.exclude_tasks[1]" in message
    assert "no-such-task" in message


LOCAL_TASK = {"id": "lokal-opgave", "phase": 2, "theme": "viden",
              "title": {"da": "Lokal opgave", "en": "Local task"}}


def test_project_exclude_and_add_tasks_change_the_effective_task_list(root):
    _set_project(root, exclude_tasks=["opsig-aftaler"], add_tasks=[LOCAL_TASK])
    content = load_content(root)
    ids = [t.id for t in content.tasks]
    assert "opsig-aftaler" not in ids
    assert content.task("opsig-aftaler") is None
    assert ids.count("lokal-opgave") == 1
    assert content.task("lokal-opgave").title.en == "Local task"
    assert "lokal-opgave" in [t.id for t in content.tasks_in(2)]
    assert len(content.tasks) == 34  # one out, one in


def test_add_task_with_unknown_theme_names_project_yaml(root):
    path = _set_project(root, add_tasks=[{**LOCAL_TASK, "theme": "nope"}])
    message = _error(root)
    assert str(path) in message
    assert "project.add_tasks[0] (id=lokal-opgave).theme" in message


def test_alias_clash_from_an_added_task_names_project_yaml(root):
    path = _set_project(root, add_tasks=[{**LOCAL_TASK, "aliases": {"da": ["projektejer"]}}])
    message = _error(root)
    assert str(path) in message
    assert "lokal-opgave" in message


def test_two_added_tasks_sharing_an_id_are_rejected(root):
    second = {**LOCAL_TASK, "title": {"da": "Anden lokal opgave", "en": "Another local task"}}
    path = _set_project(root, add_tasks=[LOCAL_TASK, second])
    message = _error(root)
    assert str(path) in message
    assert "lokal-opgave" in message


def test_municipality_row_with_three_digit_code_names_the_line(root):
    path = root / "data" / "municipalities.csv"
    _replace(path, "\n0153,Brøndby,", "\n153,Brøndby,")
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("153,"))
    message = _error(root)
    assert str(path) in message
    assert f"line {line}:" in message
    assert "code" in message


def test_glossary_related_pointing_at_missing_term(root):
    path = root / "data" / "glossary.yaml"
    _replace(path, "related: [udrulning, implementering, forberedelse",
             "related: [udrulning, no-such-term, forberedelse")
    message = _error(root)
    assert str(path) in message
    assert "terms[1] (id=udrulningsforloeb).related" in message
    assert "no-such-term" in message


def test_missing_file_is_named(root):
    path = root / "data" / "themes.yaml"
    path.unlink()
    message = _error(root)
    assert str(path) in message and "missing" in message


def test_a_default_for_a_slot_the_intent_does_not_take_is_rejected(root):
    path = root / "intents.yaml"
    _replace(path, "    free_text: [task]\n", "    free_text: [title]\n")
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert str(path) in str(info.value) and "'title' has a default or is free text but is no slot" in str(info.value)


def test_a_yes_asked_as_a_question_must_have_a_read_only_twin(root):
    path = root / "intents.yaml"
    _replace(path, '"yes": {handler: confirm.yes, slots: {numbers: optional}, asked: gate_check}',
             '"yes": {handler: confirm.yes, slots: {numbers: optional}, asked: mark_done}')
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert "intents.yes.asked" in str(info.value)


# -- provenance and the one deadline rule ------------------------------------------------------------------


def test_every_piece_of_content_says_whose_words_it_is(content):
    model_parts = [p.source for p in content.phases] + [t.source for t in content.themes] + [content.model.source]
    assert all(s.kind == "model" and s.part for s in model_parts)
    assert content.phases_source.kind == "model" and content.themes_source.kind == "model"
    for task in content.tasks:
        assert task.source.kind == "model", task.id  # the model's examples
        assert task.details_source.kind == "draft", task.id  # the model gives no description, phase or deadline
    for term in content.terms:
        assert (term.source is not None and term.source.kind == "model") or term.used_in is not None, term.id
    assert all(r.source.kind == "model" for r in content.model.roles)
    assert content.project.source.kind == "draft"  # the shipped default, until a KOMBIT project fills it in


def test_a_model_source_without_the_part_of_the_model_is_rejected(root):
    path = root / "data" / "themes.yaml"
    _replace(path, 'part: {da: "Temaer (1/2 og 2/2)", en: "Themes (1/2 and 2/2)"}', "")
    message = _error(root)
    assert str(path) in message and "overview_source" in message and "part" in message


def test_a_task_due_after_its_phase_must_be_finished_is_refused_naming_the_task(root):
    path = root / "data" / "tasks.yaml"
    # Planlæg uddannelse is in Forberedelse, which project.yaml says must be finished by idriftsættelsesdatoen.
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: planlaeg-uddannelse")
    due = text.index("    due:", start)
    end = text.index("\n", due)
    path.write_text(text[:due] + "    due: {milestone: go-live, weeks_before: 1}" + text[end:], encoding="utf-8")
    message = _error(root)
    assert str(path) in message and "planlaeg-uddannelse" in message and "phase_due" in message


def _set_due(root: Path, task_id: str, due: str) -> Path:
    path = root / "data" / "tasks.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"  - id: {task_id}")
    at = text.index("    due:", start)
    end = text.index("\n", at)
    path.write_text(text[:at] + f"    due: {due}" + text[end:], encoding="utf-8")
    return path


def test_a_later_phase_task_may_be_due_before_go_live(root):
    """Phase 2 is due by idriftsættelsesdatoen; a phase-3 task due a week before go-live contradicts nothing
    (the model: phases may overlap in practice)."""
    _set_due(root, "undervis-brugere", "{milestone: go-live, weeks_before: 1}")
    assert load_content(root).task("undervis-brugere").due.weeks_before == 1


def test_a_task_due_after_its_phases_milestone_by_weeks_after_is_refused(root):
    path = _set_due(root, "planlaeg-uddannelse", "{milestone: idriftsaettelsesdato, weeks_before: -2}")
    message = _error(root)
    assert str(path) in message and "planlaeg-uddannelse" in message


def test_phase_due_must_name_every_milestone(root):
    path = _set_project(root, phase_due={"go-live": 2})
    message = _error(root)
    assert str(path) in message and "project.phase_due" in message and "idriftsaettelsesdato" in message


@pytest.mark.parametrize("durations, field", [({5: 10}, "phase_durations_weeks.5"), ({2: -3}, "phase_durations_weeks.2")])
def test_phase_durations_must_be_phases_and_positive_weeks(root, durations, field):
    path = _set_project(root, phase_durations_weeks=durations)
    message = _error(root)
    assert str(path) in message and field in message


def test_a_glossary_definition_must_be_the_models(root):
    path = root / "data" / "glossary.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    (fase,) = [t for t in data["terms"] if t["id"] == "fase"]
    fase["source"] = {"kind": "draft"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    message = _error(root)
    assert str(path) in message and "(id=fase).source" in message


def test_a_task_in_tasks_yaml_cannot_be_local(root):
    path = root / "data" / "tasks.yaml"
    _replace(path, "  details: {kind: draft}", "  details: {kind: local}")
    message = _error(root)
    assert str(path) in message and "local" in message


def test_phase_due_decides_which_deadlines_are_allowed(root):
    """The same deadline is refused while Forberedelse is due by idriftsættelsesdatoen, allowed once it is due
    by go-live: one rule, in project.yaml."""
    _set_due(root, "planlaeg-uddannelse", "{milestone: go-live, weeks_before: 1}")
    assert "planlaeg-uddannelse" in _error(root)
    _set_project(root, phase_due={"idriftsaettelsesdato": 1, "go-live": 2})
    assert load_content(root).task("planlaeg-uddannelse").due.milestone == "go-live"


def test_a_model_word_pointing_at_an_unknown_task_is_rejected(root):
    path = root / "data" / "model_words.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["words"][0]["used_in"]["tasks"] = ["no-such-task"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    message = _error(root)
    assert str(path) in message and "no-such-task" in message
