"""Answers to the bot's questions over real HTTP (issue 12, after review): a "Ja" answers only the question it
was given for, once; "ok"/👍 confirm but "aha" and "ja?" do not; "den" about someone else's task is asked
about; switching municipality is asked about; a fault of the bot's is still an answer. Wording from the catalogs."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e import test_conversation as conversation
from tests.e2e.test_conversation import LARS, METTE, press, reply, say, state_of, t, title
from tests.harness import BotServer, card_of, group_chat, personal, reply_text

pytestmark = pytest.mark.both_stores  # every test on the data dir and on PostgreSQL (tests/conftest.py)
aarhus = conversation.aarhus  # the same fixture: Aarhus registered in a personal chat, a consultant configured

LARS_MENTION = {"type": "mention", "text": "<at>Lars Nielsen</at>",
                "mentioned": {"id": "29:aad-lars", "name": "Lars Nielsen"}}


def asked(lang: str, key: str, **values) -> str:
    return t(lang, key, **values) + "\n\n" + t(lang, "confirm.how")


async def question_buttons(server: BotServer, text: str, who=METTE, where=None) -> tuple[dict, dict]:
    message = await reply(server, text, who, where or personal(1))
    yes, no = (b["data"] for b in card_of(message)["actions"])
    return yes, no


# -- a button answers its own question, once -------------------------------------------------------------------
async def test_the_yes_of_an_older_question_does_not_answer_a_newer_one(aarhus):
    old_yes, _ = await question_buttons(aarhus, "jeg tror Udpeg gevinstejer er udført")
    new_yes, _ = await question_buttons(aarhus, "jeg tror Udpeg superbrugere er udført")
    before = await state_of(aarhus)
    assert await press(aarhus, old_yes) == t("da", "confirm.stale")
    assert await state_of(aarhus) == before
    made = await press(aarhus, new_yes)
    assert made.startswith(t("da", "mark.done", task=title("udpeg-superbrugere"), who="Mette Hansen"))
    after = await state_of(aarhus)
    assert await press(aarhus, new_yes) == t("da", "confirm.stale")  # a double click makes it once
    assert await state_of(aarhus) == after


async def test_a_yes_button_pressed_by_someone_else_or_too_late_changes_nothing(aarhus):
    where = group_chat(2)
    assert "Aarhus Kommune" in await say(aarhus, "tilmeld Aarhus", METTE, where)
    yes, _ = await question_buttons(aarhus, "jeg tror Udpeg gevinstejer er udført", METTE, where)
    before = await state_of(aarhus)
    assert await press(aarhus, yes, LARS, where) == t("da", "confirm.stale")
    aarhus.clock.now += timedelta(minutes=31)
    assert await press(aarhus, yes, METTE, where) == t("da", "confirm.stale")
    assert await state_of(aarhus) == before


async def test_a_malformed_confirm_button_is_refused(aarhus):
    yes, _ = await question_buttons(aarhus, "jeg tror Udpeg gevinstejer er udført")
    before = await state_of(aarhus)
    for bad in ({**yes, "q": 7}, {**yes, "ok": "true"}):
        assert await press(aarhus, bad) == t("da", "press.invalid")
    # A card drawn before questions had ids: which question it answered is unknown.
    assert await press(aarhus, {k: v for k, v in yes.items() if k != "q"}) == t("da", "confirm.stale")
    assert await state_of(aarhus) == before


# -- what counts as a yes ----------------------------------------------------------------------------------------
async def test_ok_and_thumbs_up_confirm_but_aha_and_a_questioning_ok_do_not(aarhus):
    await say(aarhus, "jeg tror Udpeg gevinstejer er udført")
    before = await state_of(aarhus)
    for not_a_yes in ("aha", "haha", "ok?"):
        await say(aarhus, not_a_yes)
        assert await state_of(aarhus) == before, not_a_yes
    made = await say(aarhus, "ok")
    assert made.startswith(t("da", "mark.done", task=title("udpeg-gevinstejer"), who="Mette Hansen"))
    await say(aarhus, "jeg tror Udpeg superbrugere er udført")
    made = await say(aarhus, "👍")
    assert made.startswith(t("da", "mark.done", task=title("udpeg-superbrugere"), who="Mette Hansen"))


async def test_ja_asked_as_a_question_repeats_the_question_and_changes_nothing(aarhus):
    await say(aarhus, "jeg tror Udpeg gevinstejer er udført")
    before = await state_of(aarhus)
    assert await say(aarhus, "ja?") == asked("da", "confirm.mark_done", task=title("udpeg-gevinstejer"))
    assert await state_of(aarhus) == before
    assert (await say(aarhus, "ja")).startswith(t("da", "mark.done", task=title("udpeg-gevinstejer"),
                                                   who="Mette Hansen"))


async def test_asking_about_a_listed_number_marks_nothing(aarhus):
    listing = await say(aarhus, "hvad skal vi nu?")
    third_title = next(line for line in listing.splitlines() if line.startswith("3. "))[3:]
    before = await state_of(aarhus)
    answer = await say(aarhus, "er nr 3 på plads?")
    assert answer.startswith(t("da", "task_status.open", task=third_title))
    assert await state_of(aarhus) == before


# -- "den" and who named it -------------------------------------------------------------------------------------
async def test_den_about_a_task_someone_else_named_is_asked_about(aarhus):
    where = group_chat(3)
    assert "Aarhus Kommune" in await say(aarhus, "tilmeld Aarhus", METTE, where)
    await say(aarhus, "vis Planlæg uddannelse", LARS, where)
    before = await state_of(aarhus)
    question = await say(aarhus, "marker den som udført", METTE, where)
    assert question == asked("da", "confirm.mark_done", task=title("planlaeg-uddannelse"))
    assert await state_of(aarhus) == before


async def test_den_long_after_the_task_was_named_is_asked_about(aarhus):
    await say(aarhus, "vis Planlæg uddannelse")
    aarhus.clock.now += timedelta(minutes=45)
    before = await state_of(aarhus)
    assert await say(aarhus, "marker den som udført") == asked("da", "confirm.mark_done",
                                                               task=title("planlaeg-uddannelse"))
    assert await state_of(aarhus) == before


async def test_removing_a_local_task_by_title_removes_that_one_not_the_last_task_named(aarhus):
    added = await say(aarhus, "tilføj lokal opgave 'Opdater intranettet' i Forberedelse under Viden")
    assert added.startswith(t("da", "local.added", title="Opdater intranettet", number=2, phase="Forberedelse",
                              theme="Viden og færdigheder"))
    await say(aarhus, "vis Planlæg uddannelse")
    removed = await say(aarhus, "fjern den lokale opgave Opdater intranettet")
    assert removed.startswith(t("da", "local.removed", title="Opdater intranettet"))


# -- registering -------------------------------------------------------------------------------------------------
async def test_switching_municipality_is_asked_about_first(aarhus):
    before = await state_of(aarhus)
    question = await say(aarhus, "vi er fra Odense")
    assert question == asked("da", "register.switch", previous="Aarhus Kommune", name="Odense Kommune")
    assert await state_of(aarhus) == before
    assert await say(aarhus, "nej") == t("da", "confirm.dropped")
    assert (await say(aarhus, "status")).startswith(t("da", "status.header", name="Aarhus Kommune", number=1,
                                                      phase="Opstart"))


async def test_a_date_is_not_a_municipality_code(aarhus):
    where = personal(9, tenant="a-tenant-with-nothing-registered")
    for text in ("15/3", "1/3-2027", "kommune 15/3"):
        answer = await say(aarhus, text, METTE, where)
        assert "Brøndby" not in answer, text
    assert await say(aarhus, "status", METTE, where) == t("da", "register.needed")


# -- a person named by a mention keeps their id through the question ----------------------------------------------
async def test_a_mentioned_person_assigned_on_yes_keeps_their_teams_id(aarhus):
    activity = aarhus.message("jeg tror Lars Nielsen skal være ansvarlig for Planlæg uddannelse", personal(1), METTE)
    activity["entities"] = [*activity.get("entities", []), LARS_MENTION]
    question = reply_text(await aarhus.exchange(activity))
    assert question.startswith(t("da", "confirm.assign", task=title("planlaeg-uddannelse"), person="Lars Nielsen",
                                 role=t("da", "assign.role.responsible")))
    await say(aarhus, "ja")
    (event,) = [e for e in await aarhus.events() if e["action"] == "assign"]
    assert event["details"]["person"] == {"id": "29:aad-lars", "name": "Lars Nielsen"}


# -- dates and faults --------------------------------------------------------------------------------------------
async def test_a_year_that_is_no_year_sets_no_date(aarhus):
    before = await state_of(aarhus)
    answer = await say(aarhus, "go-live er 1. marts 99999")
    assert answer and "99999" not in answer.replace("«1. marts 99999»", "")
    assert await state_of(aarhus) == before


async def test_a_fault_in_a_dialog_is_still_answered(aarhus):
    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    from bot.app import SERVICES

    aarhus.runner.app[SERVICES].store.take_pending = broken
    await say(aarhus, "jeg tror Udpeg gevinstejer er udført")
    answer = await say(aarhus, "ja")
    head, tail = t("da", "turn.failed", incident="\0").split("\0")
    assert answer.startswith(head) and answer.endswith(tail) and len(answer) == len(head) + 10 + len(tail)


# -- after the second review -------------------------------------------------------------------------------------
async def test_a_question_after_a_numbered_label_is_still_a_question(aarhus):
    before = await state_of(aarhus)
    answer = await say(aarhus, "Spørgsmål 1: er Udpeg gevinstejer udført?")
    assert answer.startswith(t("da", "task_status.open", task=title("udpeg-gevinstejer")))
    assert await state_of(aarhus) == before


async def test_a_found_name_in_a_sentence_the_classifier_read_is_asked_about(aarhus):
    before = await state_of(aarhus)
    for text in ("Lars har sagt god for at Udpeg gevinstejer er udført", "Punkt 2: Udpeg gevinstejer er udført",
                 "Udpeg gevinstejer er vel udført"):
        answer = await say(aarhus, text)
        assert answer == asked("da", "confirm.mark_done", task=title("udpeg-gevinstejer")), text
        await say(aarhus, "nej")
    assert await state_of(aarhus) == before


async def test_a_new_change_ends_the_older_question_even_when_it_only_asks_which_task(aarhus):
    await say(aarhus, "jeg tror Udpeg gevinstejer er udført")
    await say(aarhus, "jeg tror kommunikationsplanen er udført")  # no such task: "Mente du …?"
    before = await state_of(aarhus)
    assert await say(aarhus, "ja") == t("da", "confirm.nothing_asked")
    assert await state_of(aarhus) == before


async def test_forgetting_a_person_forgets_a_question_about_them(aarhus):
    from bot.app import SERVICES
    from dialogs.store import Actor

    activity = aarhus.message("jeg tror Lars Nielsen skal være ansvarlig for Planlæg uddannelse", personal(1), METTE)
    activity["entities"] = [*activity.get("entities", []), LARS_MENTION]
    await aarhus.exchange(activity)
    store = aarhus.runner.app[SERVICES].store
    await store.forget_user("29:aad-lars", Actor("forgotten-1", ""), Actor("admin", "admin"), "2026-11-27T10:00:00+00:00")
    assert await say(aarhus, "ja") == t("da", "confirm.nothing_asked")
    assert "aad-lars" not in await state_of(aarhus)


async def test_a_name_alone_in_a_registered_chat_asks_about_switching_by_both_names(aarhus):
    before = await state_of(aarhus)
    assert await say(aarhus, "Odense") == asked("da", "register.switch", previous="Aarhus Kommune",
                                                name="Odense Kommune")
    assert await state_of(aarhus) == before


async def test_a_thumbs_up_with_a_skin_tone_confirms(aarhus):
    await say(aarhus, "jeg tror Udpeg gevinstejer er udført")
    made = await say(aarhus, "👍🏽")
    assert made.startswith(t("da", "mark.done", task=title("udpeg-gevinstejer"), who="Mette Hansen"))
