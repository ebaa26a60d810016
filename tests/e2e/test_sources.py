"""Issue 13 over real HTTP, in Danish and English: every answer that quotes content says whose words they are,
drafted deadlines are labelled, words the model uses are answered with where it uses them, counts read right
at 0, 1 and 2, the new answers (four phases side by side, who does what, the project's operationalisation)
and help as a card per role. Wording and data come from the catalogs and content files, never copies."""
from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
import yaml
from babel.lists import format_list

from content import load_content
from content.loader import CONTENT_ROOT
from tests.e2e import test_conversation as conversation
from tests.e2e.test_conversation import KOMBIT, METTE, METTE_EN, reply, say, state_of, t, title, tn
from tests.harness import BotServer, card_of, reply_text

pytestmark = pytest.mark.both_stores  # the tests with a bot run on the data dir and on PostgreSQL (tests/conftest.py)
aarhus = conversation.aarhus  # Aarhus registered in a personal chat; Karen is a KOMBIT consultant
CONTENT = load_content()
PERSON = {"da": METTE, "en": METTE_EN}


def model_source(lang: str, *parts: str) -> str:
    return t(lang, "source.label", source=t(lang, "source.model", part="; ".join(parts)))


def part_of(source, lang: str) -> str:
    return source.part.da if lang == "da" else source.part.en


# -- whose words ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang, text", [("da", "vis Planlæg uddannelse"), ("en", "show Plan training")])
async def test_task_details_mark_the_drafted_fields_and_the_deadline(aarhus, lang, text):
    task = CONTENT.task("planlaeg-uddannelse")
    answer = await say(aarhus, text, PERSON[lang])
    theme, phase = CONTENT.theme(task.theme).name.get(lang), CONTENT.phase(task.phase).name.get(lang)
    assert t(lang, "details.kind.model", theme=theme, number=task.phase, phase=phase) in answer
    milestone = t(lang, f"milestone.in_text.{task.due.milestone}")
    relative = tn(lang, "details.due.before", task.due.weeks_before, milestone=milestone)
    assert f"**{t(lang, 'details.deadline.draft')}:** {relative}" in answer  # no date set yet: relative only
    sources = t(lang, "details.sources", title=t(lang, "source.model", part=part_of(task.source, lang)),
                details=t(lang, "source.draft"))
    assert answer.endswith(f"_{sources}_")


async def test_a_drafted_deadline_becomes_a_date_once_its_milestone_is_set(aarhus):
    task = CONTENT.task("planlaeg-uddannelse")
    await say(aarhus, "idriftsættelsesdato er 1. februar 2027")
    answer = await say(aarhus, "vis Planlæg uddannelse")
    day = date(2027, 2, 1) - timedelta(weeks=task.due.weeks_before)
    relative = tn("da", "details.due.before", task.due.weeks_before, milestone=t("da", "milestone.in_text.idriftsaettelsesdato"))
    assert f"**{t('da', 'details.deadline.draft')}:** {CATALOG_DATE('da', day)} ({relative})" in answer


def CATALOG_DATE(lang: str, day: date) -> str:
    return conversation.CATALOGS.date(lang, day)


@pytest.mark.parametrize("lang, text, phase", [("da", "hvad er fokus i fase 2?", 2), ("en", "what is the focus of phase 3?", 3)])
async def test_a_phase_answer_names_the_part_of_the_model(aarhus, lang, text, phase):
    answer = await say(aarhus, text, PERSON[lang])
    assert answer.endswith(f"_{model_source(lang, part_of(CONTENT.phase(phase).source, lang))}_")


async def test_the_next_list_says_its_titles_are_the_models_examples(aarhus):
    answer = await say(aarhus, "hvad skal vi nu?")
    task = CONTENT.tasks_in(1)[0]
    assert answer.endswith(f"_{model_source('da', part_of(task.source, 'da'))}_")


async def test_a_theme_says_its_tasks_are_examples_and_their_phases_our_draft(aarhus):
    answer = await say(aarhus, "hvad handler temaet Viden og færdigheder om?")
    assert t("da", "theme.examples") in answer
    theme, task = CONTENT.theme("viden"), CONTENT.task("planlaeg-uddannelse")
    assert answer.endswith(f"_{model_source('da', part_of(theme.source, 'da'), part_of(task.source, 'da'))}_")


# -- the glossary: the model's words, and words outside it -------------------------------------------------------
@pytest.mark.parametrize("lang, text, word", [("da", "hvad betyder hypercare?", "hypercare"),
                                              ("da", "hvad er en superbruger?", "superbruger"),
                                              ("en", "what does hypercare mean?", "hypercare")])
async def test_a_word_the_model_uses_is_answered_with_where_and_an_explanation_marked_ours(aarhus, lang, text, word):
    term = CONTENT.term(word)
    before = await state_of(aarhus)
    answer = await say(aarhus, text, PERSON[lang])
    places = [t(lang, "glossary.in_task", task=title(task_id, lang)) for task_id in term.used_in.tasks]
    places += [t(lang, "glossary.in_theme", theme=CONTENT.theme(theme).name.get(lang)) for theme in term.used_in.themes]
    places += [t(lang, "glossary.in_phase", number=n, phase=CONTENT.phase(n).name.get(lang)) for n in term.used_in.phases]
    assert places
    assert answer.startswith(t(lang, "glossary.used", term=term.term.get(lang), places=format_list(places, locale=lang)))
    assert t(lang, "glossary.explanation", text=term.explanation.get(lang)) in answer
    assert answer.rstrip().endswith(f"_{t(lang, 'glossary.used.source')}_")
    assert await state_of(aarhus) == before


async def test_a_word_the_model_uses_without_an_explanation_gets_only_where(aarhus):
    term = CONTENT.term("oeir")
    assert term.explanation is None
    answer = await say(aarhus, "hvad betyder ØiR?")
    assert t("da", "glossary.in_task", task=title(term.used_in.tasks[0])) in answer
    assert answer.count("\n\n") == 1  # where the model uses it, and the source: no explanation paragraph


@pytest.mark.parametrize("lang, text", [("da", "hvad betyder kaffemaskine?"), ("en", "what does coffee machine mean?")])
async def test_a_word_outside_the_model_says_so_without_far_fetched_suggestions(aarhus, lang, text):
    answer = await say(aarhus, text, PERSON[lang])
    assert answer.startswith(t(lang, "glossary.unknown", text=text.split(" ", 2)[2].removesuffix("?").removesuffix(" mean")))


async def test_a_close_misspelling_outside_the_model_suggests_the_close_term(aarhus):
    answer = await say(aarhus, "hvad betyder superbrugerkursus?")
    word = CONTENT.term("superbruger").term.da
    assert answer == t("da", "glossary.unknown.suggest", text="superbrugerkursus", options=f"«{word}»")


async def test_english_approved_terms_say_their_text_is_our_translation(aarhus):
    answer = await say(aarhus, "what does go-live mean?", METTE_EN)
    assert CONTENT.term("go-live").status.en in answer and "translation" in CONTENT.term("go-live").status.en
    assert model_source("en", "Central terms") in answer


# -- counts at 0, 1 and 2 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["da", "en"])
async def test_counts_read_right_at_two_one_and_zero(aarhus, lang):
    question = {"da": "hvor mange opgaver mangler vi i fase 4?", "en": "how many tasks are left in phase 4?"}[lang]
    fase4 = [task.id for task in CONTENT.tasks_in(4)]
    assert len(fase4) == 2
    total = len(fase4)
    for done in range(total + 1):
        answer = await say(aarhus, question, PERSON[lang])
        values = {"number": 4, "phase": CONTENT.phase(4).name.get(lang),
                  "progress": tn(lang, "word.done_of", total, done=done)}
        left = total - done
        expected = t(lang, "count.phase.zero", **values) if left == 0 else tn(lang, "count.phase", left, **values)
        assert answer.startswith(expected), (done, answer)
        if done < total:
            await say(aarhus, f"marker {title(fase4[done])} som udført", METTE)


@pytest.mark.parametrize("lang, forms", [("da", ("1 opgave", "2 opgaver")), ("en", ("1 task", "2 tasks"))])
async def test_the_plural_phrase_itself(lang, forms):
    assert tn(lang, "word.done_of", 1, done=0).endswith(forms[0])
    assert tn(lang, "word.done_of", 2, done=0).endswith(forms[1])


# -- new answers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang, text", [("da", "hvad hedder faserne?"), ("en", "what are the phases?")])
async def test_the_four_phases_side_by_side_as_columns_with_a_text_twin(aarhus, lang, text):
    message = await reply(aarhus, text, PERSON[lang])
    card = card_of(message)
    (columns,) = [b for b in card["body"] if b["type"] == "ColumnSet"]
    assert len(columns["columns"]) == 4
    for column, phase in zip(columns["columns"], CONTENT.phases, strict=True):
        texts = [item["text"] for item in column["items"]]
        assert texts[0] == t(lang, "phase.header", number=phase.number, phase=phase.name.get(lang))
        for aspect in ("focus", "effect", "criteria", "actors"):
            assert t(lang, f"phase.{aspect}") in texts
        assert phase.focus.get(lang) in texts
    text_twin = reply_text(message)
    assert card["fallbackText"] == text_twin
    for phase in CONTENT.phases:
        assert phase.effect.get(lang) in text_twin and phase.success_criteria[0].get(lang) in text_twin
    assert text_twin.endswith(f"_{model_source(lang, part_of(CONTENT.phases_source, lang))}_")


@pytest.mark.parametrize("lang, text", [("da", "hvem gør hvad?"), ("en", "who does what?")])
async def test_who_does_what_in_the_models_words(aarhus, lang, text):
    answer = await say(aarhus, text, PERSON[lang])
    assert answer.startswith(t(lang, "roles.header"))
    for role in CONTENT.model.roles:
        assert f"**{role.who.get(lang)}**: {role.does.get(lang)}" in answer
    parts = [part_of(r.source, lang) for r in CONTENT.model.roles]
    assert answer.endswith(f"_{model_source(lang, *parts)}_")


@pytest.mark.parametrize("lang, text", [("da", "hvordan bruger projektet modellen?"),
                                        ("en", "how does the project use the model?")])
async def test_the_projects_operationalisation_and_whose_it_is(aarhus, lang, text):
    answer = await say(aarhus, text, PERSON[lang])
    project = CONTENT.project
    assert answer.startswith(t(lang, "project.header", project=project.name.get(lang)))
    assert t(lang, "project.durations.none") in answer
    for milestone, phase in project.phase_due.items():
        assert t(lang, "project.phase_due", number=phase, phase=CONTENT.phase(phase).name.get(lang),
                 milestone=t(lang, f"milestone.in_text.{milestone}")) in answer
    assert t(lang, "project.excluded.zero") in answer and t(lang, "project.added.zero") in answer
    assert t(lang, "project.deviations.none") in answer
    assert answer.endswith(f"_{t(lang, 'source.draft')}_")  # the shipped default is ours, not a KOMBIT project's


async def test_purpose_and_audience_of_the_model(aarhus):
    answer = await say(aarhus, "hvem er modellen lavet til?")
    assert CONTENT.model.audience.da in answer and CONTENT.model.why.da in answer
    assert answer.endswith(f"_{model_source('da', part_of(CONTENT.model.source, 'da'))}_")


# -- help ----------------------------------------------------------------------------------------------------------
def _help_rows(lang: str, consultant: bool) -> list[str]:
    return [f"- {t(lang, f'help.what.{name}')}: «{t(lang, f'say.{name}')}»" for name, spec in CONTENT.intents.items()
            if spec.help and (consultant or not spec.consultant)]


@pytest.mark.parametrize("lang, text", [("da", "hjælp"), ("en", "help")])
async def test_help_is_a_card_with_everything_a_team_can_do_and_no_consultant_extras(aarhus, lang, text):
    message = await reply(aarhus, text, PERSON[lang])
    answer = reply_text(message)
    for row in _help_rows(lang, consultant=False):
        assert row in answer
    assert t(lang, "help.section.consultant") not in answer
    assert t(lang, "help.what.portfolio") not in answer
    for needed in ("assign", "add_local", "task_details", "who_does_what", "project_setup", "phases_overview"):
        assert t(lang, f"help.what.{needed}") in answer
    card = card_of(message)
    labels = [a["title"] for block in card["body"] if block["type"] == "ColumnSet"
              for column in block["columns"] for item in column["items"] if item["type"] == "ActionSet"
              for a in item["actions"]]
    assert t(lang, "say.status") in labels and t(lang, "say.who_does_what") in labels
    assert t(lang, "say.mark_done") not in labels  # a change needs a name: shown, not a button


async def test_help_for_a_consultant_adds_the_portfolio(aarhus):
    answer = await say(aarhus, "hjælp", KOMBIT)
    assert t("da", "help.section.consultant") in answer
    for row in _help_rows("da", consultant=True):
        assert row in answer


async def test_a_help_button_asks_its_question(aarhus):
    message = await reply(aarhus, "hjælp")
    (button,) = [a for block in card_of(message)["body"] if block["type"] == "ColumnSet"
                 for column in block["columns"] for item in column["items"] if item["type"] == "ActionSet"
                 for a in item["actions"] if a["title"] == t("da", "say.who_does_what")]
    answer = await conversation.press(aarhus, button["data"])
    assert answer.startswith(t("da", "roles.header"))


# -- which deadlines "forsinket" counts ----------------------------------------------------------------------------
async def test_the_portfolio_says_its_overdue_figures_count_drafted_deadlines(aarhus):
    await say(aarhus, "idriftsættelsesdato er 1. januar 2027")
    today = aarhus.clock.now.date()
    overdue = sum(1 for task in CONTENT.tasks if task.due and task.due.milestone == "idriftsaettelsesdato"
                  and date(2027, 1, 1) - timedelta(weeks=task.due.weeks_before) < today)
    assert overdue >= 2
    overview = await say(aarhus, "oversigt", KOMBIT)
    assert tn("da", "portfolio.overdue", overdue) in overview
    assert overview.endswith(f"_{t('da', 'portfolio.deadlines.draft')}_")
    lagging = await say(aarhus, "hvem halter?", KOMBIT)
    assert lagging.endswith(f"_{t('da', 'portfolio.deadlines.draft')}_")


# -- a KOMBIT project's own operationalisation -------------------------------------------------------------------
@pytest.fixture
async def project_bot(tmp_path, store_config):
    """Aarhus, with a project.yaml a KOMBIT project filled in: its own source, phase lengths, a task left out, a
    task of its own with a deadline, a documented deviation."""
    root = tmp_path / "content"
    shutil.copytree(CONTENT_ROOT, root)
    path = root / "data" / "project.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["project"].update(
        name={"da": "Projekt Ny Løsning", "en": "Project New Solution"},
        source={"kind": "project", "part": {"da": "implementeringsstrategien", "en": "the implementation strategy"}},
        phase_durations_weeks={1: 8, 2: 1, 3: None, 4: 26},
        exclude_tasks=["opsig-aftaler"],
        add_tasks=[{"id": "test-af-snitflader", "phase": 2, "theme": "ud-indfasning",
                    "title": {"da": "Test af snitflader", "en": "Test the interfaces"},
                    "due": {"milestone": "idriftsaettelsesdato", "weeks_before": 2}}],
        deviations=[{"what": "Fase 2 deles i to", "why": "to leverancer", "approved_by": "Metodeansvarlig",
                     "approved_on": "2026-05-01"}])
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    server = BotServer(data_dir=tmp_path / "data", content_root=root, config_overrides=dict(store_config))
    await server.start()
    assert "Aarhus Kommune" in await say(server, "tilmeld Aarhus")
    yield server, load_content(root)
    await server.close()


async def test_a_filled_in_project_is_shown_as_the_projects_own(project_bot):
    bot, content = project_bot
    answer = await say(bot, "hvordan bruger projektet modellen?")
    assert answer.startswith(t("da", "project.header", project="Projekt Ny Løsning"))
    for number, weeks in ((1, 8), (2, 1), (4, 26)):
        assert tn("da", "project.duration", weeks, number=number, phase=content.phase(number).name.da) in answer
    excluded = f"«{title('opsig-aftaler')}»"
    assert tn("da", "project.excluded", 1, tasks=excluded) in answer
    assert tn("da", "project.added", 1, tasks="«Test af snitflader»") in answer
    assert t("da", "project.deviation", what="Fase 2 deles i to", why="to leverancer", by="Metodeansvarlig",
             on="2026-05-01") in answer
    source = t("da", "source.project.part", project="Projekt Ny Løsning", part="implementeringsstrategien")
    assert answer.endswith(f"_{t('da', 'source.label', source=source)}_")


async def test_the_projects_own_task_and_deadline_are_not_called_drafts(project_bot):
    bot, content = project_bot
    answer = await say(bot, "vis Test af snitflader")
    phase, theme = content.phase(2).name.da, content.theme("ud-indfasning").name.da
    assert t("da", "details.kind.project", number=2, phase=phase, theme=theme) in answer
    assert t("da", "details.placement.draft") not in answer
    relative = tn("da", "details.due.before", 2, milestone=t("da", "milestone.in_text.idriftsaettelsesdato"))
    assert f"**{t('da', 'details.deadline')}:** {relative}" in answer
    assert t("da", "source.draft") not in answer


async def test_a_word_the_model_uses_in_a_task_the_project_left_out_still_says_where(project_bot):
    bot, content = project_bot
    word = next(w for w in content.terms if w.used_in and "opsig-aftaler" in w.used_in.tasks)
    answer = await say(bot, f"hvad betyder {word.term.da}?")
    assert t("da", "glossary.in_task", task=title("opsig-aftaler")) in answer
