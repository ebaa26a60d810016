"""The conversation over real HTTP (issue 12): a question never changes data, an unsure change is asked about
first, "den"/"ja"/"næste fase" mean what the thread says, the reply is in the message's language, and data can
be read back. Expected wording comes from the catalogs."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml

from content.catalogs import Catalogs
from content.loader import CONTENT_ROOT
from tests.harness import BotServer, Person, card_of, group_chat, personal, reply_text

pytestmark = pytest.mark.both_stores  # every test on the data dir and on PostgreSQL (tests/conftest.py)
CATALOGS = Catalogs()
HOME = personal(1)
METTE = Person("aad-mette", "Mette Hansen", "da-DK")
METTE_EN = Person("aad-mette", "Mette Hansen", "en-US")
LARS = Person("aad-lars", "Lars Nielsen", "da-DK")
KOMBIT = Person("aad-kombit", "Karen KOMBIT", "da-DK")
MODEL = yaml.safe_load((CONTENT_ROOT / "data" / "model.yaml").read_text(encoding="utf-8"))
TASKS = {t["id"]: t for t in yaml.safe_load((CONTENT_ROOT / "data" / "tasks.yaml").read_text(encoding="utf-8"))["tasks"]}


def t(lang: str, msgid: str, **values) -> str:
    return CATALOGS.text(lang, msgid, **values)


def tn(lang: str, msgid: str, count: int, **values) -> str:
    return CATALOGS.ngettext(lang, msgid, count, **values)


def progress(lang: str, done: int, total: int) -> str:
    return tn(lang, "word.done_of", total, done=done)


def title(task_id: str, lang: str = "da") -> str:
    return TASKS[task_id]["title"][lang]


async def reply(server: BotServer, text: str, who: Person = METTE, where=HOME) -> dict:
    return await server.exchange(server.message(text, where, who))


async def say(server: BotServer, text: str, who: Person = METTE, where=HOME) -> str:
    return reply_text(await reply(server, text, who, where))


async def press(server: BotServer, value: dict, who: Person = METTE, where=HOME) -> str:
    return reply_text(await server.exchange(server.activity(where, who, value=value)))


async def state_of(server: BotServer) -> str:
    """The municipality's data as stored, and the trail: what no question may change."""
    return json.dumps([await server.municipality_docs(), await server.events()], sort_keys=True)


@pytest.fixture
async def aarhus(tmp_path, store_config):
    server = BotServer(data_dir=tmp_path / "data",
                       config_overrides={"consultants": frozenset({"aad-kombit"}), **store_config})
    await server.start()
    assert "Aarhus Kommune" in await say(server, "tilmeld Aarhus")
    yield server
    await server.close()


# -- a question never changes data --------------------------------------------------------------------------------
def _negatives() -> list[str]:
    out = []
    for lang in ("da", "en"):
        examples = yaml.safe_load((CONTENT_ROOT / "sentences" / lang / "examples.yaml").read_text(encoding="utf-8"))
        for given in examples["intents"].values():
            out += given.get("not") or []
    return out


async def test_no_negative_example_changes_anything(aarhus):
    """Every sentence the examples list as "not" a change (questions, statements about something else), sent
    to a municipality with a task done, a responsible person, a go-live and a local task: nothing changes."""
    for setup in ("marker Udpeg projektleder som udført", "sæt Mette som ansvarlig for Planlæg uddannelse",
                  "go-live er 1. marts 2027", "tilføj lokal opgave 'Informér MED-udvalget' i Forberedelse under Viden"):
        await say(aarhus, setup)
    await aarhus.checkpoint()
    before = await state_of(aarhus)
    negatives = _negatives()
    assert len(negatives) >= 60
    for text in negatives:
        answer = await say(aarhus, text)
        assert answer and "Traceback" not in answer, text
    await aarhus.checkpoint()
    assert await state_of(aarhus) == before


@pytest.mark.parametrize("question", ["hvem er ansvarlig for Planlæg uddannelse?",
                                      "who is responsible for Plan training?",
                                      "hvem står som ansvarlig på Planlæg uddannelse"])
async def test_asking_who_is_responsible_names_them_and_replaces_nobody(aarhus, question):
    await say(aarhus, "sæt Mette som ansvarlig for Planlæg uddannelse")
    before = await state_of(aarhus)
    answer = await say(aarhus, question)
    lang = "en" if question.startswith("who") else "da"
    assigned = f"{t(lang, 'assign.role.responsible')}: Mette"
    assert answer == t(lang, "assign.who", task=title("planlaeg-uddannelse", lang), assigned=assigned)
    assert await state_of(aarhus) == before


async def test_asking_whether_a_task_is_done_answers_with_a_button_and_marks_nothing(aarhus):
    before = await state_of(aarhus)
    message = await reply(aarhus, "er Udpeg gevinstejer udført?")
    assert reply_text(message) == t("da", "task_status.open", task=title("udpeg-gevinstejer"))
    (button,) = card_of(message)["actions"]
    assert button["data"]["a"] == "done" and button["data"]["task"] == "udpeg-gevinstejer"
    assert await state_of(aarhus) == before
    await say(aarhus, "gevinstejeren er udpeget")
    answer = await say(aarhus, "er Udpeg gevinstejer udført?")
    assert answer == t("da", "task_status.done", task=title("udpeg-gevinstejer"), who="Mette Hansen",
                       when="27. nov. 2026 kl. 10.30")


# -- an unsure change is asked about first ------------------------------------------------------------------------
async def test_an_unsure_statement_is_asked_about_and_made_on_yes(aarhus):
    before = len(await aarhus.events())
    question = await reply(aarhus, "jeg tror Udpeg gevinstejer er udført")
    text = reply_text(question)
    assert text == t("da", "confirm.mark_done", task=title("udpeg-gevinstejer")) + "\n\n" + t("da", "confirm.how")
    assert [b["title"] for b in card_of(question)["actions"]] == [t("da", "card.yes"), t("da", "card.no")]
    assert len(await aarhus.events()) == before
    done = await say(aarhus, "ja")
    assert done.startswith(t("da", "mark.done", task=title("udpeg-gevinstejer"), who="Mette Hansen"))
    assert (await aarhus.events())[-1]["task_id"] == "udpeg-gevinstejer"
    assert await say(aarhus, "ja") == t("da", "confirm.nothing_asked")  # asked once, answered once


async def test_no_drops_the_change_and_a_button_answers_like_typing(aarhus):
    before = len(await aarhus.events())
    await say(aarhus, "databehandleraftalen er næsten godkendt")
    assert await say(aarhus, "nej") == t("da", "confirm.dropped")
    assert len(await aarhus.events()) == before
    question = await reply(aarhus, "I think the trainers are appointed", METTE_EN)
    yes_button = card_of(question)["actions"][0]["data"]
    answer = await press(aarhus, yes_button, METTE_EN)
    assert answer.startswith(t("en", "mark.done", task=title("udpeg-traenere", "en"), who="Mette Hansen"))


async def test_only_the_person_asked_can_answer_and_not_after_half_an_hour(aarhus):
    where = group_chat(1)
    assert "Aarhus Kommune" in await say(aarhus, "tilmeld Aarhus", METTE, where)
    await say(aarhus, "jeg tror Udpeg superbrugere er færdig", METTE, where)
    assert await say(aarhus, "ja", LARS, where) == t("da", "confirm.nothing_asked")  # Lars was not asked
    aarhus.clock.now += timedelta(minutes=31)
    before = len(await aarhus.events())
    assert await say(aarhus, "ja", METTE, where) == t("da", "confirm.nothing_asked")
    assert len(await aarhus.events()) == before


async def test_replacing_who_is_responsible_is_asked_about_first(aarhus):
    await say(aarhus, "sæt Mette som ansvarlig for Planlæg uddannelse")
    question = await say(aarhus, "sæt Lars som ansvarlig for Planlæg uddannelse")
    assert question.startswith(t("da", "assign.replace", task=title("planlaeg-uddannelse"),
                                 role=t("da", "assign.role.responsible"), current="Mette", person="Lars"))
    assigned = f"{t('da', 'assign.role.responsible')}: Mette"
    assert await say(aarhus, "hvem er ansvarlig for Planlæg uddannelse?") == t(
        "da", "assign.who", task=title("planlaeg-uddannelse"), assigned=assigned)
    await say(aarhus, "sæt Lars som ansvarlig for Planlæg uddannelse")
    assert await say(aarhus, "ja") == t("da", "assign.done.responsible", person="Lars", task=title("planlaeg-uddannelse"))


# -- the thread's context -----------------------------------------------------------------------------------------
async def test_den_and_that_mean_the_last_task_named(aarhus):
    await say(aarhus, "vis Planlæg uddannelse")
    done = await say(aarhus, "marker den som udført")
    assert done.startswith(t("da", "mark.done", task=title("planlaeg-uddannelse"), who="Mette Hansen"))
    undone = await say(aarhus, "fortryd den")
    assert undone.startswith(t("da", "reopen.done", task=title("planlaeg-uddannelse"), who="Mette Hansen"))
    # A bare "færdig" names no task: the last one is asked about, not marked.
    assert await say(aarhus, "færdig") == t("da", "confirm.mark_done", task=title("planlaeg-uddannelse")) + \
        "\n\n" + t("da", "confirm.how")


async def test_without_a_task_named_before_den_is_asked_about(aarhus):
    before = await state_of(aarhus)
    assert await say(aarhus, "marker den som udført") == t("da", "ask.task")
    assert await state_of(aarhus) == before


async def test_a_number_means_the_list_on_screen(aarhus):
    listing = await say(aarhus, "hvad skal vi nu?")
    third = next(line for line in listing.splitlines() if line.startswith("3. "))[3:]
    done = await say(aarhus, "nr 3 er på plads")
    assert done.startswith(t("da", "mark.done", task=third, who="Mette Hansen"))


async def test_phases_named_by_where_the_municipality_is(aarhus):
    next_phase = await say(aarhus, "hvad mangler vi i næste fase?")
    assert next_phase.startswith(t("da", "next.header", number=2, phase="Forberedelse", done=0,
                                   total=sum(1 for x in TASKS.values() if x["phase"] == 2)))
    criteria = await say(aarhus, "hvad er succeskriterierne for fasen vi står i?")
    assert criteria.startswith(t("da", "phase.header", number=1, phase="Opstart"))
    assert t("da", "phase.criteria") in criteria


# -- the reply's language -----------------------------------------------------------------------------------------
async def test_the_reply_is_in_the_language_of_the_message_unless_one_was_chosen(aarhus):
    english_client = Person("aad-mette", "Mette Hansen", "en-US")
    total = len(TASKS)
    counted = {lang: tn(lang, "count.all", total, progress=progress(lang, 0, total)) for lang in ("da", "en")}
    assert (await say(aarhus, "hvor mange opgaver mangler vi?", english_client)).startswith(counted["da"])
    assert (await say(aarhus, "how many tasks are left?", METTE)).startswith(counted["en"])
    await say(aarhus, "svar på engelsk", METTE)
    assert (await say(aarhus, "hvor mange opgaver mangler vi?", METTE)).startswith(counted["en"])


# -- reading data back --------------------------------------------------------------------------------------------
async def test_milestones_read_back(aarhus):
    assert (await say(aarhus, "hvornår er go-live?")).startswith(t("da", "milestone.not_set", milestone="Go-live"))
    await say(aarhus, "go-live er 1. marts 2027")
    answer = await say(aarhus, "hvilke datoer har vi sat?")
    assert t("da", "milestone.is", milestone="Go-live", date="1. marts 2027", left="om 3 måneder") in answer
    assert t("da", "milestone.not_set", milestone="Idriftsættelsesdato") in answer


async def test_counts_read_back_with_plurals(aarhus):
    total = len(TASKS)
    assert await say(aarhus, "hvor mange opgaver mangler vi?") == \
        tn("da", "count.all", total, progress=progress("da", 0, total)) + "\n\n" + t("da", "count.hint")
    opstart = [k for k, v in TASKS.items() if v["phase"] == 1]
    for task in opstart[:-1]:
        await say(aarhus, f"marker {title(task)} som udført")
    assert (await say(aarhus, "hvor mange opgaver er der tilbage i fase 1?")).startswith(
        tn("da", "count.phase", 1, number=1, phase="Opstart", progress=progress("da", len(opstart) - 1, len(opstart))))


@pytest.mark.parametrize("text, starts", [
    ("hvad hedder faserne?", ("phases.header",)),
    ("hvilke temaer arbejder modellen med?", ("themes.header", 7)),
    ("hvad er implementeringsmodellen?", None),
])
async def test_the_model_read_back(aarhus, text, starts):
    answer = await say(aarhus, text)
    if starts is None:
        assert answer.startswith(f"**{MODEL['model']['name']['da']}**")
    else:
        assert answer.startswith(tn("da", starts[0], starts[1]) if len(starts) > 1 else t("da", starts[0]))


async def test_what_happened_today(aarhus):
    await say(aarhus, "marker Udpeg projektleder som udført")
    answer = await say(aarhus, "hvad er der sket i dag?")
    assert answer.startswith(t("da", "history.header.today", name="Aarhus Kommune"))
    assert title("udpeg-projektleder") in answer


async def test_a_consultant_asks_how_far_a_municipality_is(aarhus):
    answer = await say(aarhus, "hvor langt er Aarhus?", KOMBIT, personal(7))
    assert answer.startswith(t("da", "status.header", name="Aarhus Kommune", number=1, phase="Opstart"))


# -- small talk and what is not understood ------------------------------------------------------------------------
@pytest.mark.parametrize("text, kind, lang", [("tusind tak", "thanks", "da"), ("hav en god dag", "bye", "da"),
                                              ("thanks a lot", "thanks", "en"), ("👍", "ack", "da")])
async def test_small_talk_gets_a_friendly_answer(aarhus, text, kind, lang):
    who = METTE if lang == "da" else METTE_EN
    assert await say(aarhus, text, who) == t(lang, f"smalltalk.{kind}")


async def test_what_is_not_understood_offers_the_likeliest_readings_as_buttons(aarhus):
    message = await reply(aarhus, "trallala bum bum")
    text = reply_text(message)
    assert text.startswith(t("da", "unknown.body").split("{")[0])
    buttons = card_of(message)["actions"]
    assert 1 <= len(buttons) <= 3 and all(b["data"]["a"] == "say" for b in buttons)
    pressed = await press(aarhus, buttons[0]["data"])
    assert not pressed.startswith(t("da", "unknown.body").split("{")[0])
